// Package archivetest holds what every archive.Store must do, as one test suite that
// each backend runs against itself.
package archivetest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flow-ci/flow-ci/internal/archive"
)

// NewStorage makes new, empty storage for the test t (removing it in t.Cleanup) and
// returns open, which opens a Store over it; t.Fatal is how open fails. Calling open
// again, after the suite closed the Store it gave before, gives a Store over the same
// data, as a restarted archive gets. The suite closes every Store it opens.
type NewStorage func(t *testing.T) (open func() archive.Store)

// Conformance runs the behaviour every archive.Store must have, each case as a
// subtest on storage of its own.
func Conformance(t *testing.T, newStorage NewStorage) {
	for _, c := range []struct {
		name string
		run  func(*testing.T, *harness)
	}{
		{"AppendReadsBackExactBytes", testAppendExact},
		{"EmptyChunkOnlySavesState", testEmptyChunk},
		{"CompleteLogIsFinal", testCompleteIsFinal},
		{"LargeLog", testLargeLog},
		{"StateRoundTrip", testStateRoundTrip},
		{"StoreCountsChunksBytesStored", testStoreCounts},
		{"Streams", testStreams},
		{"NamespaceConfinesReads", testNamespaceConfines},
		{"ConcurrentStreams", testConcurrentStreams},
		{"Reopen", testReopen},
		{"RecordRoundTrip", testRecordRoundTrip},
		{"RecordReplace", testRecordReplace},
		{"RecordNewestByName", testRecordNewestByName},
		{"ListFilters", testListFilters},
		{"ListOrder", testListOrder},
		{"ListPagesAcrossInserts", testListPaging},
		{"ListLimit", testListLimit},
		{"Delete", testDelete},
		{"DeleteLogsWithoutRecord", testDeleteLogsOnly},
		{"Usage", testUsage},
		{"RefusesInvalidInput", testInvalidInput},
		{"ArtifactRoundTrip", testArtifactRoundTrip},
		{"ArtifactWrongSize", testArtifactWrongSize},
		{"ArtifactReplace", testArtifactReplace},
		{"ArtifactsDelete", testArtifactsDelete},
		{"ArtifactRefusesInvalidInput", testArtifactInvalidInput},
		{"CachePending", testCachePending},
		{"CacheFinish", testCacheFinish},
		{"CacheFindOrder", testCacheFindOrder},
		{"CacheFindLiteral", testCacheFindLiteral},
		{"CacheOpen", testCacheOpen},
		{"CacheEvict", testCacheEvict},
		{"CacheExpire", testCacheExpire},
		{"CacheRefusesInvalidInput", testCacheInvalidInput},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, newHarness(t, newStorage))
		})
	}
}

// harness is one subtest's storage and the Store open on it.
type harness struct {
	t    *testing.T
	open func() archive.Store
	s    archive.Store
}

func newHarness(t *testing.T, newStorage NewStorage) *harness {
	h := &harness{t: t, open: newStorage(t)}
	h.s = h.open()
	t.Cleanup(func() {
		if h.s != nil {
			if err := h.s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
	})
	return h
}

// reopen closes the Store and opens another over the same storage.
func (h *harness) reopen() {
	h.t.Helper()
	s := h.s
	h.s = nil
	if err := s.Close(); err != nil {
		h.t.Fatalf("Close: %v", err)
	}
	h.s = h.open()
}

func (h *harness) append(key archive.StreamKey, chunk string, next archive.LogState) {
	h.t.Helper()
	saved, err := h.s.Append(h.t.Context(), key, []byte(chunk), next)
	if err != nil {
		h.t.Fatalf("Append(%v, %d bytes): %v", key, len(chunk), err)
	}
	st, ok, err := h.s.State(h.t.Context(), key)
	if err != nil || !ok || !equalState(saved, st) {
		h.t.Fatalf("Append(%v) returned %+v; State is %+v (ok=%v, %v)", key, saved, st, ok, err)
	}
}

// equalState compares states, their times by instant.
func equalState(a, b archive.LogState) bool {
	at, bt := a.LastTime, b.LastTime
	a.LastTime, b.LastTime = time.Time{}, time.Time{}
	return a == b && at.Equal(bt)
}

// appendAll appends each chunk, with states that carry only caller-owned fields.
func (h *harness) appendAll(key archive.StreamKey, chunks ...string) {
	h.t.Helper()
	for _, c := range chunks {
		h.append(key, c, archive.LogState{})
	}
}

func (h *harness) state(key archive.StreamKey) archive.LogState {
	h.t.Helper()
	st, ok, err := h.s.State(h.t.Context(), key)
	if err != nil || !ok {
		h.t.Fatalf("State(%v) = ok %v, %v; want a state", key, ok, err)
	}
	return st
}

func (h *harness) readLog(key archive.StreamKey) string {
	h.t.Helper()
	got, err := readLog(h.t, h.s, key)
	if err != nil {
		h.t.Fatalf("read log %v: %v", key, err)
	}
	return got
}

func readLog(t *testing.T, s archive.Store, key archive.StreamKey) (string, error) {
	r, err := s.OpenLog(t.Context(), key)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	_, err = io.Copy(&buf, r)
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	return buf.String(), err
}

// wantNoLog fails unless the store holds no log under key.
func (h *harness) wantNoLog(key archive.StreamKey) {
	h.t.Helper()
	if _, ok, err := h.s.State(h.t.Context(), key); ok || err != nil {
		h.t.Errorf("State(%v) = ok %v, %v; want no state", key, ok, err)
	}
	if r, err := h.s.OpenLog(h.t.Context(), key); !errors.Is(err, archive.ErrNotFound) {
		if err == nil {
			_ = r.Close()
		}
		h.t.Errorf("OpenLog(%v) = %v, want ErrNotFound", key, err)
	}
}

func (h *harness) put(r archive.Record) {
	h.t.Helper()
	if err := h.s.PutRecord(h.t.Context(), r); err != nil {
		h.t.Fatalf("PutRecord(%s): %v", r.UID, err)
	}
}

func (h *harness) list(q archive.Query) ([]archive.Record, string) {
	h.t.Helper()
	recs, next, err := h.s.List(h.t.Context(), q)
	if err != nil {
		h.t.Fatalf("List(%+v): %v", q, err)
	}
	return recs, next
}

// listAll follows the cursors of q to the last page.
func (h *harness) listAll(q archive.Query) []string {
	h.t.Helper()
	var uids []string
	for page := 0; ; page++ {
		if page > 1000 {
			h.t.Fatalf("List(%+v) never ends", q)
		}
		recs, next := h.list(q)
		uids = append(uids, uidsOf(recs)...)
		if next == "" {
			return uids
		}
		q.After = next
	}
}

func uidsOf(recs []archive.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.UID)
	}
	return out
}

// epoch is the time the suite's records are created around: with nanoseconds, so that
// a store that keeps less is caught.
var epoch = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

// newRecord is a complete record of run uid in ns named name, created at
// epoch+minutes.
func newRecord(ns, name, uid string, minutes int) archive.Record {
	created := epoch.Add(time.Duration(minutes) * time.Minute)
	return archive.Record{
		UID: uid, Namespace: ns, Name: name,
		RepoURL: "https://git.example.com/team/app.git", Branch: "main",
		Commit:  "0123456789abcdef0123456789abcdef01234567",
		Phase:   "Succeeded",
		Created: created, Finished: created.Add(90*time.Second + 7),
		Doc: fmt.Appendf(nil, `{"metadata":{"name":%q,"uid":%q},"status":{"phase":"Succeeded"}}`, name, uid),
	}
}

// streamKey is stream of run uid in namespace ns.
func streamKey(ns, uid, stream string) archive.StreamKey {
	return archive.StreamKey{Namespace: ns, UID: uid, Stream: stream}
}

func diff(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("%s (-want +got):\n%s", what, d)
	}
}
