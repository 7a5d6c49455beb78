package archivetest

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/flow-ci/flow-ci/internal/archive"
)

// Caches: saved by runs, pending until their run succeeded, found by key and branch.

func testCachePending(t *testing.T, h *harness) {
	e := newCache("team-a", "run-1", "main", "deps-abc", 0)
	got := h.putCache(e, "tarball")
	if got.ID == "" || got.Committed || got.SHA256 != sha256Hex([]byte("tarball")) || got.Size != 7 ||
		!got.LastUsed.Equal(e.Created) || !got.Created.Equal(e.Created) {
		t.Errorf("PutCache = %+v: want an ID, pending, the body's size and sha256, LastUsed = Created = %s", got, e.Created)
	}
	h.wantNoCache(cacheQuery("team-a", "deps-abc", []string{"deps-"}, "main"))
	if r, _, err := h.s.OpenCache(t.Context(), got.ID); !errors.Is(err, archive.ErrNotFound) {
		if err == nil {
			_ = r.Close()
		}
		t.Errorf("OpenCache of a pending entry = %v, want ErrNotFound", err)
	}
	h.wantCacheBytes("team-a", 7)

	// A body of the wrong size stores nothing.
	for _, body := range []string{"short", "longer than said"} {
		e := newCache("team-a", "run-1", "main", "deps-wrong", 0)
		e.Size = 8
		if _, err := h.s.PutCache(t.Context(), e, strings.NewReader(body)); !errors.Is(err, archive.ErrWrongSize) {
			t.Errorf("PutCache of %d bytes as 8 = %v, want ErrWrongSize", len(body), err)
		}
	}
	h.wantCacheBytes("team-a", 7)
	h.finishCaches("run-1", true, 1)
}

// testCacheFinish: a commit replaces the entry of the same key; without a commit the
// run's entries go.
func testCacheFinish(t *testing.T, h *harness) {
	q := cacheQuery("team-a", "deps-abc", nil, "main")
	old := h.putCache(newCache("team-a", "run-0", "main", "deps-abc", 0), "old")
	h.finishCaches("run-0", true, 1)
	neu := h.putCache(newCache("team-a", "run-1", "main", "deps-abc", 5), "new one")
	other := h.putCache(newCache("team-a", "run-1", "feature", "deps-abc", 5), "other branch")
	if got := h.findCache(q); got.ID != old.ID {
		t.Errorf("before the run finished FindCache = %s, want the old %s", got.ID, old.ID)
	}
	h.reopen()
	h.finishCaches("run-1", true, 2)
	got := h.findCache(q)
	neu.Committed = true
	diff(t, "FindCache after the commit", neu, got)
	if r, _, err := h.s.OpenCache(t.Context(), old.ID); !errors.Is(err, archive.ErrNotFound) {
		if err == nil {
			_ = r.Close()
		}
		t.Errorf("OpenCache of the superseded entry = %v, want ErrNotFound", err)
	}
	if got := h.findCache(cacheQuery("team-a", "deps-abc", nil, "feature")); got.ID != other.ID {
		t.Errorf("another branch's entry: FindCache = %s, want %s", got.ID, other.ID)
	}
	h.wantCacheBytes("team-a", 7+12)
	h.finishCaches("run-1", true, 0)

	// A failed run's entries are dropped, and what they would replace stays.
	h.putCache(newCache("team-a", "run-2", "main", "deps-abc", 9), "failed run's")
	h.finishCaches("run-2", false, 1)
	if got := h.findCache(q); got.ID != neu.ID {
		t.Errorf("after a run finished without commit FindCache = %s, want %s", got.ID, neu.ID)
	}
	h.wantCacheBytes("team-a", 7+12)

	// A run that saved one key twice (a retried step) leaves the later one.
	h.putCache(newCache("team-a", "run-3", "main", "deps-abc", 10), "first try")
	last := h.putCache(newCache("team-a", "run-3", "main", "deps-abc", 11), "second")
	h.finishCaches("run-3", true, 2)
	if got := h.findCache(q); got.ID != last.ID {
		t.Errorf("after a run saved a key twice FindCache = %s, want the later %s", got.ID, last.ID)
	}
	h.wantCacheBytes("team-a", 6+12)
}

// testCacheFindOrder adds entries from the last step of the order to the first, and
// each one must win over those before it.
func testCacheFindOrder(t *testing.T, h *harness) {
	q := cacheQuery("team-a", "linux-abc", []string{"linux-x", "linux-"}, "feature", "main")
	h.wantNoCache(q)
	for _, tc := range []struct {
		why     string
		branch  string
		key     string
		minutes int
	}{
		{"the second restore key on the default branch", "main", "linux-1", 1},
		{"the newest within a step", "main", "linux-2", 2},
		{"the second restore key on the run's branch", "feature", "linux-0", 0},
		{"the first restore key on the default branch, though older", "main", "linux-x0", -5},
		{"the first restore key on the run's branch", "feature", "linux-x0", -4},
		{"the exact key on the default branch", "main", "linux-abc", -3},
		{"the exact key on the run's branch", "feature", "linux-abc", -2},
	} {
		// Entries that must never be found, whatever their age.
		for _, e := range []archive.CacheEntry{
			withScope(newCache("team-b", "run-x", tc.branch, tc.key, 100), "team-b", "", ""),
			withScope(newCache("team-a", "run-x", tc.branch, tc.key, 100), "", "https://git.example.com/other.git", ""),
			withScope(newCache("team-a", "run-x", tc.branch, tc.key, 100), "", "", "other-cache"),
			newCache("team-a", "run-pending", tc.branch, tc.key, 100),
		} {
			h.putCache(e, "not this one")
		}
		h.finishCaches("run-x", true, 3)
		want := h.putCache(newCache("team-a", "run-"+tc.key, tc.branch, tc.key, tc.minutes), tc.why)
		h.finishCaches("run-"+tc.key, true, 1)
		if got := h.findCache(q); got.ID != want.ID {
			t.Errorf("%s: FindCache = %s %s (%s), want %s %s", tc.why, got.Branch, got.Key, got.ID, tc.branch, tc.key)
		}
	}
}

// testCacheFindLiteral: a restore key is a literal prefix: no LIKE wildcards, and case
// counts.
func testCacheFindLiteral(t *testing.T, h *harness) {
	// Each entry a LIKE wildcard would wrongly match is newer than the right one.
	for i, key := range []string{"node_modules-1", "nodeXmodules-2", "pip%-3", "pipe-4", "Linux-5", "é-6"} {
		h.putCache(newCache("team-a", "run-1", "main", key, i), key)
	}
	h.finishCaches("run-1", true, 6)
	for prefix, want := range map[string]string{
		"node_": "node_modules-1", "nodeX": "nodeXmodules-2", "pip%": "pip%-3", "pipe": "pipe-4",
		"Linux-": "Linux-5", "é": "é-6", "node_modules-1": "node_modules-1",
	} {
		if got := h.findCache(cacheQuery("team-a", "none", []string{prefix}, "main")); got.Key != want {
			t.Errorf("restore key %q found %q, want %q", prefix, got.Key, want)
		}
	}
	for _, prefix := range []string{"node%", "n_de", "pi_", "%", "_", "linux-", "LINUX", "node_modules-10", "e"} {
		h.wantNoCache(cacheQuery("team-a", "none", []string{prefix}, "main"))
	}
}

// testCacheOpen reads an entry back and marks it used.
func testCacheOpen(t *testing.T, h *harness) {
	body := strings.Repeat("a tarball\x00\xff", 10000)
	e := h.putCache(newCache("team-a", "run-1", "main", "deps", 0), body)
	h.finishCaches("run-1", true, 1)
	before := time.Now()
	r, got, err := h.s.OpenCache(t.Context(), e.ID)
	if err != nil {
		t.Fatalf("OpenCache: %v", err)
	}
	read, err := io.ReadAll(r)
	_ = r.Close()
	if err != nil || string(read) != body {
		t.Errorf("OpenCache read %d bytes (%v), want the %d stored", len(read), err, len(body))
	}
	if got.LastUsed.Before(before.Add(-time.Second)) || got.LastUsed.After(time.Now().Add(time.Second)) {
		t.Errorf("OpenCache's entry was last used %s, want now (%s)", got.LastUsed, before)
	}
	e.Committed, e.LastUsed = true, got.LastUsed
	diff(t, "OpenCache's entry", e, got)
	diff(t, "FindCache after OpenCache", e, h.findCache(cacheQuery("team-a", "deps", nil, "main")))
	for _, id := range []string{strings.Repeat("0", 32), "not-an-id", ""} {
		if _, _, err := h.s.OpenCache(t.Context(), id); err == nil {
			t.Errorf("OpenCache(%q) succeeded", id)
		}
	}
}

// newCache is an entry of run runUID's cache "deps" of the suite's repository,
// created at epoch+minutes; putCache sets Size to its body's.
func newCache(ns, runUID, branch, key string, minutes int) archive.CacheEntry {
	return archive.CacheEntry{
		Namespace: ns, RepoURL: "https://git.example.com/team/app.git", Branch: branch, Name: "deps", Key: key,
		RunUID: runUID, Created: epoch.Add(time.Duration(minutes) * time.Minute),
	}
}

// withScope is e in another namespace, repository or cache name ("" keeps e's).
func withScope(e archive.CacheEntry, ns, repo, name string) archive.CacheEntry {
	e.Namespace = cmpOr(ns, e.Namespace)
	e.RepoURL = cmpOr(repo, e.RepoURL)
	e.Name = cmpOr(name, e.Name)
	return e
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// cacheQuery looks for the suite's cache "deps" in ns.
func cacheQuery(ns, key string, restore []string, branches ...string) archive.CacheQuery {
	return archive.CacheQuery{
		Namespace: ns, RepoURL: "https://git.example.com/team/app.git", Name: "deps",
		Key: key, RestoreKeys: restore, Branches: branches,
	}
}

func (h *harness) putCache(e archive.CacheEntry, body string) archive.CacheEntry {
	h.t.Helper()
	e.Size = int64(len(body))
	got, err := h.s.PutCache(h.t.Context(), e, strings.NewReader(body))
	if err != nil {
		h.t.Fatalf("PutCache(%s %s): %v", e.Branch, e.Key, err)
	}
	return got
}

func (h *harness) finishCaches(runUID string, commit bool, want int) {
	h.t.Helper()
	n, err := h.s.FinishCaches(h.t.Context(), runUID, commit)
	if err != nil || n != want {
		h.t.Fatalf("FinishCaches(%s, %v) = %d, %v; want %d", runUID, commit, n, err, want)
	}
}

func (h *harness) findCache(q archive.CacheQuery) archive.CacheEntry {
	h.t.Helper()
	e, err := h.s.FindCache(h.t.Context(), q)
	if err != nil {
		h.t.Errorf("FindCache(%+v): %v", q, err)
	}
	return e
}

func (h *harness) wantNoCache(q archive.CacheQuery) {
	h.t.Helper()
	if e, err := h.s.FindCache(h.t.Context(), q); !errors.Is(err, archive.ErrNotFound) {
		h.t.Errorf("FindCache(%+v) = %+v, %v; want ErrNotFound", q, e, err)
	}
}

func (h *harness) wantCacheBytes(ns string, want int64) {
	h.t.Helper()
	got, err := h.s.CacheBytes(h.t.Context(), ns)
	if err != nil || got != want {
		h.t.Errorf("CacheBytes(%s) = %d, %v; want %d", ns, got, err, want)
	}
}
