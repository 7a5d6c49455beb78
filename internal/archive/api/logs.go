package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/flow-ci/flow-ci/internal/archive"
)

// maxMissingHeader bounds X-Flowci-Log-Missing; the record's streams carry it whole.
const maxMissingHeader = 256

// getLog answers GET /v1/namespaces/{ns}/runs/{name}/logs/{stream}[?uid=][&offset=]:
// the stored log as it is, streamed from the store, from byte offset on. Its length and
// state are those of the stored copy when the download began: a log still being
// appended is cut there, so the body is exactly X-Flowci-Log-Bytes minus offset bytes
// long and Content-Length says so. A reader following a log polls with the offset it
// has read to; an offset past the stored end is 416.
func (s *server) getLog(w http.ResponseWriter, r *http.Request) {
	ns, name, stream := r.PathValue("ns"), r.PathValue("name"), r.PathValue("stream")
	uid, offset, err := logRef(ns, name, stream, r.URL.RawQuery)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !s.allow(w, r, ns, "get", "pods", "log") {
		return
	}
	rec, _, err := s.record(r.Context(), ns, name, uid)
	if err != nil {
		s.storeFailed(w, r, err, "the archive holds no such run")
		return
	}
	key := archive.StreamKey{UID: rec.UID, Namespace: ns, Stream: stream}
	// The state first: what the store holds then is at least that long, since appends
	// only add to it.
	state, ok, err := s.store.State(r.Context(), key)
	if err == nil && !ok {
		err = archive.ErrNotFound
	}
	if err != nil {
		s.storeFailed(w, r, err, "the archive holds no log "+stream+" of this run")
		return
	}
	if offset > state.Bytes {
		writeError(w, http.StatusRequestedRangeNotSatisfiable,
			fmt.Sprintf("offset %d is past the end of log %s (%d bytes)", offset, stream, state.Bytes))
		return
	}
	log, err := s.openLogAt(r.Context(), key, offset)
	if err != nil {
		s.storeFailed(w, r, err, "the archive holds no log "+stream+" of this run")
		return
	}
	defer func() { _ = log.Close() }()
	setLogHeaders(w.Header(), state, state.Bytes-offset)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if n, err := io.Copy(w, io.LimitReader(log, state.Bytes-offset)); err != nil || n < state.Bytes-offset {
		if r.Context().Err() == nil {
			s.log.Error(err, "sending a log", "namespace", ns, "uid", rec.UID, "stream", stream, "sent", n,
				"offset", offset, "bytes", state.Bytes)
		}
		// Abort the response, so the reader sees a broken download rather than a
		// shorter log that looks whole.
		panic(http.ErrAbortHandler)
	}
}

// openLogAt opens the stored log and skips its first offset bytes. The store reads a
// log from its start only, so the skipped bytes are read and decompressed too: a
// follower's poll costs the log's length so far.
func (s *server) openLogAt(ctx context.Context, key archive.StreamKey, offset int64) (io.ReadCloser, error) {
	log, err := s.store.OpenLog(ctx, key)
	if err != nil || offset == 0 {
		return log, err
	}
	if _, err := io.CopyN(io.Discard, log, offset); err != nil {
		_ = log.Close()
		return nil, fmt.Errorf("skipping to byte %d of log %s/%s: %w", offset, key.UID, key.Stream, err)
	}
	return log, nil
}

// setLogHeaders describes the stored log st, of which the body holds length bytes.
func setLogHeaders(h http.Header, st archive.LogState, length int64) {
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	h.Set(HeaderLogBytes, strconv.FormatInt(st.Bytes, 10))
	h.Set(HeaderLogDone, strconv.FormatBool(st.Done))
	h.Set(HeaderLogCut, strconv.FormatBool(st.Cut))
	if m := headerText(st.Missing, maxMissingHeader); m != "" {
		h.Set(HeaderLogMissing, m)
	}
}

// headerText is s as a header value: printable ASCII only (anything else becomes
// '?'), at most max bytes.
func headerText(s string, max int) string {
	var b strings.Builder
	for _, r := range strings.TrimSpace(s) {
		if b.Len() >= max {
			break
		}
		if r < 0x20 || r > 0x7e {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}
