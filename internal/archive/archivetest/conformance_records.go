package archivetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flow-ci/flow-ci/internal/archive"
)

func testRecordRoundTrip(t *testing.T, h *harness) {
	full := newRecord("team-a", "build-1", "run-1", 0)
	bare := archive.Record{UID: "run-2", Namespace: "team-a", Name: "build-2", Created: epoch, Doc: []byte(`{}`)}
	for _, r := range []archive.Record{full, bare} {
		h.put(r)
		got, err := h.s.RecordByUID(t.Context(), r.UID)
		if err != nil {
			t.Fatalf("RecordByUID(%s): %v", r.UID, err)
		}
		diff(t, "RecordByUID", r, got)
		got, err = h.s.Record(t.Context(), r.Namespace, r.Name)
		if err != nil {
			t.Fatalf("Record(%s, %s): %v", r.Namespace, r.Name, err)
		}
		diff(t, "Record", r, got)
	}
	if _, err := h.s.RecordByUID(t.Context(), "run-none"); !errors.Is(err, archive.ErrNotFound) {
		t.Errorf("RecordByUID of an unknown run = %v, want ErrNotFound", err)
	}
	for _, nn := range [][2]string{{"team-a", "none"}, {"team-b", "build-1"}} {
		if _, err := h.s.Record(t.Context(), nn[0], nn[1]); !errors.Is(err, archive.ErrNotFound) {
			t.Errorf("Record(%s, %s) = %v, want ErrNotFound", nn[0], nn[1], err)
		}
	}
}

func testRecordReplace(t *testing.T, h *harness) {
	r := newRecord("team-a", "build", "run-1", 0)
	h.put(r)
	r.Phase, r.Branch, r.Finished = "Failed", "fix", r.Finished.Add(time.Hour)
	r.Doc = []byte(`{"status":{"phase":"Failed","message":"step 2 failed"}}`)
	h.put(r)
	got, err := h.s.RecordByUID(t.Context(), "run-1")
	if err != nil {
		t.Fatalf("RecordByUID: %v", err)
	}
	diff(t, "the replaced record", r, got)
	diff(t, "records after a replace", []string{"run-1"}, h.listAll(archive.Query{}))
}

func testRecordNewestByName(t *testing.T, h *harness) {
	older := newRecord("team-a", "build", "run-old", 0)
	newer := newRecord("team-a", "build", "run-new", 10)
	other := newRecord("team-b", "build", "run-other", 20)
	// The newer run stored first: the order of storing must not matter.
	for _, r := range []archive.Record{newer, older, other} {
		h.put(r)
	}
	for _, want := range []archive.Record{newer, other} {
		got, err := h.s.Record(t.Context(), want.Namespace, want.Name)
		if err != nil {
			t.Fatalf("Record(%s, %s): %v", want.Namespace, want.Name, err)
		}
		diff(t, "Record of a reused name", want, got)
	}
}

// sha is a 40-digit object name starting with prefix.
func sha(prefix string) string { return prefix + strings.Repeat("0", 40-len(prefix)) }

func testListFilters(t *testing.T, h *harness) {
	const repoA, repoB = "https://git.example.com/a.git", "https://git.example.com/b.git"
	for _, f := range []struct {
		uid, ns                     string
		minutes                     int
		repo, branch, commit, phase string
	}{
		{"r1", "team-a", 0, repoA, "main", sha("abcd1"), "Succeeded"},
		{"r2", "team-a", 1, repoA, "dev", sha("abcdf"), "Failed"},
		{"r3", "team-a", 2, repoB, "main", sha("abce0"), "Succeeded"},
		{"r4", "team-b", 3, repoA, "main", sha("abc90"), "Succeeded"},
		{"r5", "team-b", 4, repoB, "dev", sha("ffff"), "Failed"},
		{"r6", "team-a", 5, repoA, "main", sha("abca0"), "Cancelled"},
	} {
		r := newRecord(f.ns, "build-"+f.uid, f.uid, f.minutes)
		r.RepoURL, r.Branch, r.Commit, r.Phase = f.repo, f.branch, f.commit, f.phase
		h.put(r)
	}
	at := func(minutes int) time.Time { return epoch.Add(time.Duration(minutes) * time.Minute) }
	for _, tc := range []struct {
		name string
		q    archive.Query
		want []string
	}{
		{"everything", archive.Query{}, []string{"r6", "r5", "r4", "r3", "r2", "r1"}},
		{"namespace", archive.Query{Namespace: "team-b"}, []string{"r5", "r4"}},
		{"unknown namespace", archive.Query{Namespace: "team-c"}, nil},
		{"repository", archive.Query{RepoURL: repoA}, []string{"r6", "r4", "r2", "r1"}},
		{"branch", archive.Query{Branch: "dev"}, []string{"r5", "r2"}},
		{"phase", archive.Query{Phase: "Failed"}, []string{"r5", "r2"}},
		{"commit prefix", archive.Query{Commit: "abcd"}, []string{"r2", "r1"}},
		{"longer commit prefix", archive.Query{Commit: "abcdf"}, []string{"r2"}},
		{"commit prefix ending in 9", archive.Query{Commit: "abc9"}, []string{"r4"}},
		{"full commit", archive.Query{Commit: sha("abce0")}, []string{"r3"}},
		{"commit prefix of nothing", archive.Query{Commit: "abcf"}, nil},
		{"since, inclusive", archive.Query{Since: at(2)}, []string{"r6", "r5", "r4", "r3"}},
		{"until, exclusive", archive.Query{Until: at(4)}, []string{"r4", "r3", "r2", "r1"}},
		{"since and until", archive.Query{Since: at(2), Until: at(4)}, []string{"r4", "r3"}},
		{"every field", archive.Query{Namespace: "team-a", RepoURL: repoA, Branch: "main", Phase: "Succeeded",
			Commit: "abcd", Since: at(0), Until: at(1)}, []string{"r1"}},
		{"several fields, oldest first", archive.Query{Namespace: "team-a", RepoURL: repoA, Branch: "main",
			Oldest: true}, []string{"r1", "r6"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs, next := h.list(tc.q)
			diff(t, "records", tc.want, uidsOf(recs))
			if next != "" {
				t.Errorf("a single page returned the cursor %q", next)
			}
		})
	}
}

func testListOrder(t *testing.T, h *harness) {
	// Stored out of order, two created at the same instant.
	for i, minutes := range []int{3, 0, 5, 1, 1, 4} {
		h.put(newRecord("team-a", "build", fmt.Sprintf("run-%d", i), minutes))
	}
	newest, _ := h.list(archive.Query{})
	oldest, _ := h.list(archive.Query{Oldest: true})
	for _, l := range []struct {
		name string
		recs []archive.Record
		cmp  int
	}{{"newest first", newest, 1}, {"oldest first", oldest, -1}} {
		if len(l.recs) != 6 {
			t.Fatalf("%s: %d records, want 6", l.name, len(l.recs))
		}
		for i := 1; i < len(l.recs); i++ {
			if l.recs[i-1].Created.Compare(l.recs[i].Created) == -l.cmp {
				t.Errorf("%s: %s (%s) before %s (%s)", l.name, l.recs[i-1].UID, l.recs[i-1].Created,
					l.recs[i].UID, l.recs[i].Created)
			}
		}
	}
	reversed := slices.Clone(uidsOf(oldest))
	slices.Reverse(reversed)
	diff(t, "oldest first, reversed", uidsOf(newest), reversed)
}

func testListPaging(t *testing.T, h *harness) {
	// Three records created at the same instant, so that pages end inside a tie.
	for i, minutes := range []int{0, 1, 1, 1, 2, 3, 4} {
		h.put(newRecord("team-a", "build", fmt.Sprintf("p%d", i), minutes))
	}
	for _, oldest := range []bool{false, true} {
		whole := h.listAll(archive.Query{Oldest: oldest, Limit: 100})
		if len(whole) != 7 {
			t.Fatalf("Oldest %v: %d records, want 7", oldest, len(whole))
		}
		for limit := 1; limit <= 7; limit++ {
			diff(t, fmt.Sprintf("Oldest %v, pages of %d", oldest, limit), whole,
				h.listAll(archive.Query{Oldest: oldest, Limit: limit}))
			first, next := h.list(archive.Query{Oldest: oldest, Limit: limit})
			if len(first) != limit || (next == "") != (limit == 7) {
				t.Errorf("Oldest %v, first page of %d: %d records, next %q", oldest, limit, len(first), next)
			}
		}
	}

	// Records added between pages: those before the cursor are not seen, those after
	// it are, and none is seen twice or skipped.
	whole := h.listAll(archive.Query{})
	page, next := h.list(archive.Query{Limit: 3})
	h.put(newRecord("team-a", "build", "newer", 10))
	h.put(newRecord("team-a", "build", "older", -10))
	got := append(uidsOf(page), h.listAll(archive.Query{Limit: 3, After: next})...)
	diff(t, "newest first, across inserts", append(whole, "older"), got)

	whole = h.listAll(archive.Query{Oldest: true})
	page, next = h.list(archive.Query{Oldest: true, Limit: 4})
	h.put(newRecord("team-a", "build", "newest", 20))
	h.put(newRecord("team-a", "build", "oldest", -20))
	got = append(uidsOf(page), h.listAll(archive.Query{Oldest: true, Limit: 4, After: next})...)
	diff(t, "oldest first, across inserts", append(whole, "newest"), got)
}

func testListLimit(t *testing.T, h *harness) {
	const n = 501
	for i := range n {
		r := newRecord("team-a", "build", fmt.Sprintf("run-%03d", i), i)
		r.Doc = nil
		h.put(r)
	}
	for _, tc := range []struct {
		limit, want int
	}{{0, 50}, {1, 1}, {499, 499}, {500, 500}, {501, 500}, {100000, 500}} {
		recs, next := h.list(archive.Query{Limit: tc.limit})
		if len(recs) != tc.want || next == "" {
			t.Errorf("Limit %d: %d records, next %q; want %d and a next page", tc.limit, len(recs), next, tc.want)
		}
	}
	if got := h.listAll(archive.Query{Limit: 1000}); len(got) != n {
		t.Errorf("pages of the most: %d records in all, want %d", len(got), n)
	}
}
