package archivetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flow-ci/flow-ci/internal/archive"
)

// testCacheEvict: least recently used first, pending entries counted and kept.
func testCacheEvict(t *testing.T, h *harness) {
	ctx := t.Context()
	sizes := map[string]int{"a": 100, "b": 200, "c": 300, "d": 400}
	ids := map[string]string{}
	for i, name := range []string{"a", "b", "c", "d"} {
		e := h.putCache(newCache("team-a", "run-1", "main", "key-"+name, i), strings.Repeat(name, sizes[name]))
		ids[name] = e.ID
	}
	h.finishCaches("run-1", true, 4)
	h.putCache(newCache("team-a", "run-2", "main", "key-e", 9), strings.Repeat("e", 50))
	h.putCache(newCache("team-b", "run-3", "main", "key-a", 0), strings.Repeat("x", 1000))
	h.finishCaches("run-3", true, 1)
	// Opening b makes it the most recently used: a, c, d, b.
	r, _, err := h.s.OpenCache(ctx, ids["b"])
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Close()
	h.wantCacheBytes("team-a", 1050)

	// Only committed bytes count (1000): pending entries are bounded when they arrive,
	// and a commit must not evict fresh entries for another run's pending ones.
	h.evict("team-a", 1000, 0, 0)
	h.evict("team-a", 600, 2, 400) // a, c: 900, 600
	h.wantCacheBytes("team-a", 650)
	for name, found := range map[string]bool{"a": false, "b": true, "c": false, "d": true} {
		e, err := h.s.FindCache(ctx, cacheQuery("team-a", "key-"+name, nil, "main"))
		if found && (err != nil || e.ID != ids[name]) {
			t.Errorf("FindCache(key-%s) after eviction = %+v, %v; want it kept", name, e, err)
		}
		if !found && !errors.Is(err, archive.ErrNotFound) {
			t.Errorf("FindCache(key-%s) after eviction = %+v, %v; want it evicted", name, e, err)
		}
	}
	h.evict("team-a", 0, 2, 600) // b, d; e is pending and stays
	h.wantCacheBytes("team-a", 50)
	h.evict("team-a", 0, 0, 0)
	h.wantCacheBytes("team-b", 1000)
	h.finishCaches("run-2", true, 1)
	h.findCache(cacheQuery("team-a", "key-e", nil, "main"))
}

func (h *harness) evict(ns string, maxBytes int64, wantEvicted int, wantFreed int64) {
	h.t.Helper()
	n, freed, err := h.s.EvictCaches(h.t.Context(), ns, maxBytes)
	if err != nil || n != wantEvicted || freed != wantFreed {
		h.t.Errorf("EvictCaches(%s, %d) = %d, %d, %v; want %d entries of %d bytes",
			ns, maxBytes, n, freed, err, wantEvicted, wantFreed)
	}
}

// testCacheExpire drops entries still pending long after they were saved.
func testCacheExpire(t *testing.T, h *harness) {
	ctx := t.Context()
	h.putCache(newCache("team-a", "run-old", "main", "deps-1", 0), "old pending")
	h.putCache(newCache("team-b", "run-old", "main", "deps-2", 1), "old pending too")
	committed := h.putCache(newCache("team-a", "run-done", "main", "deps-3", 0), "committed")
	h.finishCaches("run-done", true, 1)
	h.putCache(newCache("team-a", "run-new", "main", "deps-4", 60), "recent")

	n, err := h.s.ExpirePendingCaches(ctx, epoch.Add(30*time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("ExpirePendingCaches = %d, %v; want 2", n, err)
	}
	h.wantCacheBytes("team-a", int64(len("committed")+len("recent")))
	h.wantCacheBytes("team-b", 0)
	h.finishCaches("run-old", true, 0)
	if got := h.findCache(cacheQuery("team-a", "deps-3", nil, "main")); got.ID != committed.ID {
		t.Errorf("a committed entry after expiry: FindCache = %s, want %s", got.ID, committed.ID)
	}
	h.finishCaches("run-new", true, 1)
	if n, err := h.s.ExpirePendingCaches(ctx, time.Now()); err != nil || n != 0 {
		t.Errorf("ExpirePendingCaches with nothing pending = %d, %v; want 0", n, err)
	}
}

func testCacheInvalidInput(t *testing.T, h *harness) {
	ctx := t.Context()
	put := func(edit func(*archive.CacheEntry)) error {
		e := newCache("team-a", "run-1", "main", "deps-1", 0)
		e.Size = 1
		edit(&e)
		_, err := h.s.PutCache(ctx, e, strings.NewReader("x"))
		return err
	}
	find := func(edit func(*archive.CacheQuery)) error {
		q := cacheQuery("team-a", "deps-1", []string{"deps-"}, "main")
		edit(&q)
		_, err := h.s.FindCache(ctx, q)
		return err
	}
	for name, call := range map[string]func() error{
		"PutCache without a namespace":  func() error { return put(func(e *archive.CacheEntry) { e.Namespace = "" }) },
		"PutCache without a repository": func() error { return put(func(e *archive.CacheEntry) { e.RepoURL = "" }) },
		"PutCache without a branch":     func() error { return put(func(e *archive.CacheEntry) { e.Branch = "" }) },
		"PutCache without a name":       func() error { return put(func(e *archive.CacheEntry) { e.Name = "" }) },
		"PutCache without a key":        func() error { return put(func(e *archive.CacheEntry) { e.Key = "" }) },
		"PutCache with a NUL in the key": func() error {
			return put(func(e *archive.CacheEntry) { e.Key = "a\x00" })
		},
		"PutCache without a run":      func() error { return put(func(e *archive.CacheEntry) { e.RunUID = "" }) },
		"PutCache of a negative size": func() error { return put(func(e *archive.CacheEntry) { e.Size = -1 }) },
		"FindCache without a key":     func() error { return find(func(q *archive.CacheQuery) { q.Key = "" }) },
		"FindCache without branches":  func() error { return find(func(q *archive.CacheQuery) { q.Branches = nil }) },
		"FindCache with an empty restore key": func() error {
			return find(func(q *archive.CacheQuery) { q.RestoreKeys = []string{"deps-", ""} })
		},
		"FindCache without a namespace": func() error { return find(func(q *archive.CacheQuery) { q.Namespace = "" }) },
		"FinishCaches without a run": func() error {
			_, err := h.s.FinishCaches(ctx, "", true)
			return err
		},
		"CacheBytes of no namespace": func() error { _, err := h.s.CacheBytes(ctx, ""); return err },
		"ExpirePendingCaches without a time": func() error {
			_, err := h.s.ExpirePendingCaches(ctx, time.Time{})
			return err
		},
		"EvictCaches to a negative size": func() error {
			_, _, err := h.s.EvictCaches(ctx, "team-a", -1)
			return err
		},
	} {
		if err := call(); err == nil || errors.Is(err, archive.ErrNotFound) {
			t.Errorf("%s: %v, want an error saying what is wrong", name, err)
		}
	}
	h.wantCacheBytes("team-a", 0)
}
