package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flow-ci/flow-ci/internal/archive"
	"github.com/flow-ci/flow-ci/internal/archive/api"
	"github.com/flow-ci/flow-ci/internal/archive/client"
)

// TestLogRoundTrip: a log comes back through the API and the client byte for byte,
// whatever bytes it holds, with its state; a log's Missing reaches a header only as
// printable ASCII.
func TestLogRoundTrip(t *testing.T) {
	f := newFixture(t)
	c := client.New(f.srv.URL, "t-logs", nil)
	ctx := context.Background()
	var got bytes.Buffer
	info, err := c.Log(ctx, "team-a", "build", "step-0", &got)
	if err != nil {
		t.Fatal(err)
	}
	want := f.logs["step-0"]
	if sha256.Sum256(got.Bytes()) != sha256.Sum256(want) || info.Bytes != int64(len(want)) || !info.Done || info.Cut {
		t.Fatalf("step-0: %d bytes (%+v), want the %d stored", got.Len(), info, len(want))
	}
	got.Reset()
	info, err = c.Log(ctx, "team-a", "build", "clone", &got)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != string(f.logs["clone"]) || info.Missing != "lines after 10:02??X-Injected: yes?[31m ? the pod was gone" {
		t.Errorf("clone: %q, %+v", got.String(), info)
	}
	got.Reset()
	if _, err := c.LogUID(ctx, "team-a", "build", "u-build-old", "step-0", &got); err != nil || got.String() != "the old run's log\n" {
		t.Errorf("the older build's log: %q, %v", got.String(), err)
	}
}

// TestGet: a record holds the summary, the stored document as it was stored, and the
// state of each log.
func TestGet(t *testing.T) {
	f := newFixture(t)
	run, err := client.New(f.srv.URL, "t-get", nil).Get(context.Background(), "team-a", "build")
	if err != nil {
		t.Fatal(err)
	}
	stored := func(stream string) int64 {
		st, _, err := f.store.State(context.Background(), archive.StreamKey{UID: "u-build-new", Namespace: "team-a", Stream: stream})
		if err != nil || st.Stored == 0 {
			t.Fatalf("the stored size of %s: %d, %v", stream, st.Stored, err)
		}
		return st.Stored
	}
	want := api.Run{
		Summary: api.Summary{UID: "u-build-new", Namespace: "team-a", Name: "build", RepoURL: "https://git.example/app.git",
			Branch: "main", Commit: "bbbb111122223333444455556666777788889999", Phase: "Succeeded",
			Created: base.Add(time.Hour), Finished: base.Add(time.Hour + time.Minute)},
		Record: []byte(`{"status":{"phase":"Succeeded","steps":[{"name":"test","message":"<b>&</b>"}]}}`),
		Streams: []api.Stream{
			{Name: "clone", Bytes: int64(len(f.logs["clone"])), Stored: stored("clone"), Done: true,
				Missing: "lines after 10:02\r\nX-Injected: yes\x1b[31m — the pod was gone"},
			{Name: "step-0", Bytes: int64(len(f.logs["step-0"])), Stored: stored("step-0"), Done: true},
		},
	}
	if d := cmp.Diff(want, run); d != "" {
		t.Errorf("Get (-want +got):\n%s", d)
	}
}

// TestPaging: pages of a list follow each other, newest first, to the last; the
// filters select on the server.
func TestPaging(t *testing.T) {
	f := newFixture(t)
	c := client.New(f.srv.URL, "t-list", nil)
	ctx := context.Background()
	list := func(flt client.Filter) (uids []string, pages int) {
		for {
			items, next, err := c.List(ctx, "team-a", flt)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, s := range items {
				uids = append(uids, s.UID)
			}
			if next == "" {
				return uids, pages
			}
			flt.After = next
		}
	}
	all := []string{"u-r-5", "u-r-4", "u-r-3", "u-r-2", "u-r-1", "u-r-0", "u-build-new", "u-build-old"}
	for _, tc := range []struct {
		name   string
		filter client.Filter
		want   []string
		pages  int
	}{
		{"pages of 3", client.Filter{Limit: 3}, all, 3},
		{"one page", client.Filter{}, all, 1},
		{"a branch", client.Filter{Branch: "feature/x", Limit: 2}, []string{"u-r-4", "u-r-2", "u-r-0"}, 2},
		{"a phase and a repo", client.Filter{Phase: "Failed", RepoURL: "https://git.example/app.git"},
			[]string{"u-r-4", "u-r-2", "u-r-0", "u-build-old"}, 1},
		{"a commit prefix", client.Filter{Commit: "BBBB1111"}, []string{"u-build-new"}, 1},
		{"a time range", client.Filter{Since: base.Add(time.Hour), Until: base.Add(2*time.Hour + 2*time.Minute)},
			[]string{"u-r-1", "u-r-0", "u-build-new"}, 1},
	} {
		uids, pages := list(tc.filter)
		if d := cmp.Diff(tc.want, uids); d != "" || pages != tc.pages {
			t.Errorf("%s: %d pages, want %d (-want +got):\n%s", tc.name, pages, tc.pages, d)
		}
	}
}

// TestClientErrors: a refusal reaches the caller with its status and the server's
// message, and a 404 is archive.ErrNotFound.
func TestClientErrors(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	status := func(err error) (int, string) {
		var e *client.Error
		if !errors.As(err, &e) {
			t.Fatalf("%v is not a *client.Error", err)
		}
		return e.Status, e.Message
	}
	_, err := client.New(f.srv.URL, "t-admin", nil).Get(ctx, "team-b", "secret")
	if code, msg := status(err); code != 403 || msg != "you may not get pipelineruns in namespace team-b" {
		t.Errorf("another namespace: %d %q", code, msg)
	}
	_, err = client.New(f.srv.URL, "t-runs", nil).Log(ctx, "team-a", "build", "step-0", new(bytes.Buffer))
	if code, msg := status(err); code != 403 || !strings.Contains(msg, "pods/log") {
		t.Errorf("a log without pods/log: %d %q", code, msg)
	}
	_, _, err = client.New(f.srv.URL, "expired", nil).List(ctx, "team-a", client.Filter{})
	if code, _ := status(err); code != 401 {
		t.Errorf("a bad token: %d", code)
	}
	_, err = client.New(f.srv.URL, "t-admin", nil).Get(ctx, "team-a", "nope")
	if code, _ := status(err); code != 404 || !errors.Is(err, archive.ErrNotFound) {
		t.Errorf("a missing run: %v, want a 404 that is archive.ErrNotFound", err)
	}
	_, _, err = client.New(f.srv.URL, "t-admin", nil).List(ctx, "team-a", client.Filter{Limit: 1000})
	if code, msg := status(err); code != 400 || !strings.Contains(msg, "limit") {
		t.Errorf("a limit too large: %d %q", code, msg)
	}
}

// TestLargestRecord: a record whose document is as large as the store keeps reads
// whole through the client.
func TestLargestRecord(t *testing.T) {
	f := newFixture(t)
	doc := append(append([]byte(`"`), bytes.Repeat([]byte("x"), 16<<20-2)...), '"')
	if err := f.store.PutRecord(context.Background(), archive.Record{UID: "u-large", Namespace: "team-a", Name: "large",
		Phase: "Succeeded", Created: base, Doc: doc}); err != nil {
		t.Fatal(err)
	}
	run, err := client.New(f.srv.URL, "t-admin", nil).Get(context.Background(), "team-a", "large")
	if err != nil || !bytes.Equal(run.Record, doc) {
		t.Errorf("a record of %d bytes: %d bytes, %v", len(doc), len(run.Record), err)
	}
}
