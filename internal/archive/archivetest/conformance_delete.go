package archivetest

import (
	"cmp"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flow-ci/flow-ci/internal/archive"
)

func testDelete(t *testing.T, h *harness) {
	gone := []archive.StreamKey{streamKey("team-a", "run-1", "clone"), streamKey("team-a", "run-1", "step-0")}
	kept := streamKey("team-a", "run-2", "clone")
	h.put(newRecord("team-a", "build", "run-1", 0))
	h.appendAll(gone[0], "cloning run 1\n")
	h.appendAll(gone[1], "step 0 of run 1\n", "more\n")
	r2 := newRecord("team-a", "build", "run-2", -1)
	h.put(r2)
	h.appendAll(kept, "cloning run 2\n")

	if err := h.s.Delete(t.Context(), "run-1"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := h.s.RecordByUID(t.Context(), "run-1"); !errors.Is(err, archive.ErrNotFound) {
		t.Errorf("RecordByUID of a deleted run = %v, want ErrNotFound", err)
	}
	// The name now means the run that is left, though it is older.
	if got, err := h.s.Record(t.Context(), "team-a", "build"); err != nil || got.UID != "run-2" {
		t.Errorf("Record after deleting the newest run = %s, %v; want run-2", got.UID, err)
	}
	for _, k := range gone {
		h.wantNoLog(k)
	}
	if got, err := h.s.Streams(t.Context(), "run-1"); len(got) != 0 || err != nil {
		t.Errorf("Streams of a deleted run = %v, %v; want none", got, err)
	}
	diff(t, "records after Delete", []string{"run-2"}, h.listAll(archive.Query{}))
	if got := h.readLog(kept); got != "cloning run 2\n" {
		t.Errorf("another run's log after Delete = %q", got)
	}
	for _, uid := range []string{"run-1", "run-none"} {
		if err := h.s.Delete(t.Context(), uid); err != nil {
			t.Errorf("Delete(%s) of what is not there: %v", uid, err)
		}
	}
	// A log under a deleted run's key starts afresh.
	h.appendAll(gone[0], "again\n")
	if got := h.readLog(gone[0]); got != "again\n" {
		t.Errorf("log stored after Delete = %q, want %q", got, "again\n")
	}
}

// testDeleteLogsOnly deletes a run whose logs were stored but not (yet) its record.
func testDeleteLogsOnly(t *testing.T, h *harness) {
	k := streamKey("team-a", "run-1", "clone")
	h.appendAll(k, "cloning\n")
	if err := h.s.Delete(t.Context(), "run-1"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	h.wantNoLog(k)
	if u := h.usage(); len(u) != 0 {
		t.Errorf("Usage after deleting everything = %+v, want none", u)
	}
}

func testUsage(t *testing.T, h *harness) {
	if u := h.usage(); len(u) != 0 {
		t.Errorf("Usage of an empty archive = %+v, want none", u)
	}
	recs := []archive.Record{
		newRecord("team-a", "build", "run-1", 0),
		newRecord("team-a", "build", "run-2", 1),
		newRecord("team-b", "build", "run-3", 2),
	}
	recs[1].Doc = []byte(`{"a longer document than the others":"` + strings.Repeat("x", 3000) + `"}`)
	for _, r := range recs {
		h.put(r)
	}
	logs := []archive.StreamKey{
		streamKey("team-a", "run-1", "clone"), streamKey("team-a", "run-1", "step-0"),
		streamKey("team-a", "run-2", "clone"), streamKey("team-c", "run-4", "clone"),
	}
	for i, k := range logs {
		for range i + 1 {
			h.appendAll(k, "some output of the step\n")
		}
	}
	stored := func(i int) int64 { return h.state(logs[i]).Stored }
	want := []archive.Usage{
		{Namespace: "team-a", Records: 2, Stored: int64(len(recs[0].Doc)+len(recs[1].Doc)) + stored(0) + stored(1) + stored(2)},
		{Namespace: "team-b", Records: 1, Stored: int64(len(recs[2].Doc))},
		{Namespace: "team-c", Records: 0, Stored: stored(3)},
	}
	diff(t, "Usage", want, h.usage())
}

// usage is the store's Usage, by namespace.
func (h *harness) usage() []archive.Usage {
	h.t.Helper()
	u, err := h.s.Usage(h.t.Context())
	if err != nil {
		h.t.Fatalf("Usage: %v", err)
	}
	slices.SortFunc(u, func(a, b archive.Usage) int { return cmp.Compare(a.Namespace, b.Namespace) })
	return u
}

func testInvalidInput(t *testing.T, h *harness) {
	ctx := t.Context()
	valid := newRecord("team-a", "build", "run-1", 0)
	withRecord := func(edit func(*archive.Record)) archive.Record {
		r := valid
		edit(&r)
		return r
	}
	appendTo := func(k archive.StreamKey) error {
		_, err := h.s.Append(ctx, k, []byte("x"), archive.LogState{})
		return err
	}
	list := func(q archive.Query) error { _, _, err := h.s.List(ctx, q); return err }
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"Append without a UID", func() error { return appendTo(streamKey("team-a", "", "clone")) }},
		{"Append without a stream", func() error { return appendTo(streamKey("team-a", "run-1", "")) }},
		{"Append without a namespace", func() error { return appendTo(streamKey("", "run-1", "clone")) }},
		{"Append to a stream outside [a-z0-9-]", func() error { return appendTo(streamKey("team-a", "run-1", "Step_0")) }},
		{"Append to a stream with a path", func() error { return appendTo(streamKey("team-a", "run-1", "../x")) }},
		{"Append under a UID with a path", func() error { return appendTo(streamKey("team-a", "../x", "clone")) }},
		{"State without a UID", func() error { _, _, err := h.s.State(ctx, streamKey("team-a", "", "clone")); return err }},
		{"OpenLog without a stream", func() error { _, err := h.s.OpenLog(ctx, streamKey("team-a", "run-1", "")); return err }},
		{"PutRecord without a UID", func() error { return h.s.PutRecord(ctx, withRecord(func(r *archive.Record) { r.UID = "" })) }},
		{"PutRecord without a namespace", func() error {
			return h.s.PutRecord(ctx, withRecord(func(r *archive.Record) { r.Namespace = "" }))
		}},
		{"PutRecord without a name", func() error { return h.s.PutRecord(ctx, withRecord(func(r *archive.Record) { r.Name = "" })) }},
		{"PutRecord without a creation time", func() error {
			return h.s.PutRecord(ctx, withRecord(func(r *archive.Record) { r.Created = time.Time{} }))
		}},
		{"PutRecord with a namespace too long", func() error {
			return h.s.PutRecord(ctx, withRecord(func(r *archive.Record) { r.Namespace = strings.Repeat("a", 64) }))
		}},
		{"Record without a name", func() error { _, err := h.s.Record(ctx, "team-a", ""); return err }},
		{"List by a commit prefix of 3", func() error { return list(archive.Query{Commit: "abc"}) }},
		{"List with a negative limit", func() error { return list(archive.Query{Limit: -1}) }},
		{"List after a made-up cursor", func() error { return list(archive.Query{After: "not a cursor"}) }},
	} {
		if err := tc.call(); err == nil || errors.Is(err, archive.ErrNotFound) {
			t.Errorf("%s: %v, want an error saying what is wrong", tc.name, err)
		}
	}
	if u := h.usage(); len(u) != 0 {
		t.Errorf("refused calls stored something: Usage %+v", u)
	}
}
