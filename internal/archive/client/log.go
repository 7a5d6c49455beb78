package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/flow-ci/flow-ci/internal/archive/api"
)

// LogInfo is the state of a downloaded log when the download began.
type LogInfo struct {
	// Bytes is the length of the stored log, all of which was written.
	Bytes int64
	// Done: the log is complete (or the archive gave up on it: see Missing).
	Done bool
	// Cut: the log reached the archive's cap and the rest was dropped.
	Cut bool
	// Missing says which part of the log the archive could not store (shortened).
	Missing string
}

// Log writes the stored log of stream ("clone", "step-0", ...) of the newest run named
// name in ns to w, exactly as stored. It fails when fewer bytes arrive than the log
// holds, after writing what did.
func (c *Client) Log(ctx context.Context, ns, name, stream string, w io.Writer) (LogInfo, error) {
	return c.LogUID(ctx, ns, name, "", stream, w)
}

// LogUID is Log of the run of that name with that UID ("": the newest).
func (c *Client) LogUID(ctx context.Context, ns, name, uid, stream string, w io.Writer) (LogInfo, error) {
	return c.LogFrom(ctx, ns, name, uid, stream, 0, w)
}

// LogFrom is LogUID from byte offset of the log on, for a reader that follows a log
// still being stored: it polls with the offset it has read to. Its LogInfo.Bytes is the
// stored log's whole length, of which Bytes minus offset were written to w. A run that
// has no record yet (it still runs) is found by its uid.
func (c *Client) LogFrom(ctx context.Context, ns, name, uid, stream string, offset int64, w io.Writer) (LogInfo, error) {
	q := uidQuery(uid)
	if offset > 0 {
		if q == nil {
			q = url.Values{}
		}
		q.Set("offset", strconv.FormatInt(offset, 10))
	}
	resp, err := c.do(ctx, q, ns, "runs", name, "logs", stream)
	if err != nil {
		return LogInfo{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	info, err := logInfo(resp.Header)
	if err != nil {
		return LogInfo{}, err
	}
	want := info.Bytes - offset
	n, err := io.Copy(w, io.LimitReader(resp.Body, want+1))
	switch {
	case err != nil:
		return info, fmt.Errorf("reading log %s of %s/%s after %d of %d bytes: %w", stream, ns, name, n, want, err)
	case n != want:
		return info, fmt.Errorf("reading log %s of %s/%s: %d of %d bytes: %w", stream, ns, name, n, want, errLogLength)
	}
	return info, nil
}

// errLogLength: the body's length is not the one the archive announced.
var errLogLength = errors.New("the log's length is not the announced one")

func logInfo(h http.Header) (LogInfo, error) {
	bytes, err := strconv.ParseInt(h.Get(api.HeaderLogBytes), 10, 64)
	if err != nil || bytes < 0 {
		return LogInfo{}, fmt.Errorf("the archive's answer has no valid %s", api.HeaderLogBytes)
	}
	done, _ := strconv.ParseBool(h.Get(api.HeaderLogDone))
	cut, _ := strconv.ParseBool(h.Get(api.HeaderLogCut))
	return LogInfo{Bytes: bytes, Done: done, Cut: cut, Missing: h.Get(api.HeaderLogMissing)}, nil
}
