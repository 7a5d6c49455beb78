package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"time"

	"github.com/flow-ci/flow-ci/internal/archive"
)

// The headers of a restored cache: the key of the entry and the branch that saved it.
const (
	HeaderCacheKey    = "X-Flowci-Cache-Key"
	HeaderCacheBranch = "X-Flowci-Cache-Branch"
)

// cacheNameRE and cacheKeyRE are what the pipeline parser allows a cache's name and keys.
var (
	cacheNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$`)
	cacheKeyRE  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
)

// maxRestoreKeys bounds a restore's fallback keys, as the store does.
const maxRestoreKeys = 8

// getCache answers GET /v1/agent/caches/{name}?key=K[&restore=P...][&default=B]: the
// newest entry of the agent's namespace and repository with key K saved from the run's
// branch, then from B (the repository's default branch), then by each prefix P the
// same way; 404 when none. Only a run's clone restores: the request names the cache and
// keys, never the scope, which comes from the run.
func (s *server) getCache(w http.ResponseWriter, r *http.Request, a Agent) {
	if a.Component != ComponentClone {
		writeError(w, http.StatusForbidden, "only a run's clone restores caches")
		return
	}
	q, err := parseQuery(r.URL.RawQuery, "key", "restore", "default")
	name := r.PathValue("name")
	if err == nil {
		err = checkCacheQuery(name, q.Get("key"), q["restore"])
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var branches []string
	if a.Branch != "" { // a detached run has no branch of its own
		branches = append(branches, a.Branch)
	}
	if d := q.Get("default"); d != "" && d != a.Branch && len(d) <= 255 {
		branches = append(branches, d)
	}
	if len(branches) == 0 {
		s.counts.Restore("miss", 0)
		writeError(w, http.StatusNotFound, "a detached run without a default branch has no entries to restore")
		return
	}
	e, err := s.store.FindCache(r.Context(), archive.CacheQuery{Namespace: a.Namespace, RepoURL: a.RepoURL, Name: name,
		Key: q.Get("key"), RestoreKeys: q["restore"], Branches: branches})
	if err == nil {
		var body io.ReadCloser
		if body, e, err = s.store.OpenCache(r.Context(), e.ID); err == nil {
			defer func() { _ = body.Close() }()
			s.sendCache(w, r, e, body)
			return
		}
	}
	if errors.Is(err, archive.ErrNotFound) {
		s.counts.Restore("miss", 0)
	}
	s.storeFailed(w, r, err, "no entry of cache "+name+" matches")
}

func (s *server) sendCache(w http.ResponseWriter, r *http.Request, e archive.CacheEntry, body io.Reader) {
	h := w.Header()
	h.Set("Content-Type", "application/zstd")
	h.Set("Content-Length", strconv.FormatInt(e.Size, 10))
	h.Set(HeaderCacheKey, e.Key)
	h.Set(HeaderCacheBranch, headerText(e.Branch, 255))
	h.Set(HeaderSHA256, e.SHA256)
	w.WriteHeader(http.StatusOK)
	n, err := io.Copy(w, io.LimitReader(body, e.Size))
	s.counts.Restore("hit", n)
	if err != nil || n < e.Size {
		panic(http.ErrAbortHandler) // a cut entry must fail its restore, not look whole
	}
}

// putCache answers PUT /v1/agent/caches/{name}?key=K: the body, exactly Content-Length
// bytes of tar.zst, is stored as the run's entry of the cache under K, found by later
// runs only once this run has succeeded (the archive commits it with the run's record).
// Only the step the operator adds to runs that may save does, and the rule is checked
// again here (v1alpha1.SavesCaches): an untrusted run's pods cannot save, whatever they
// send.
func (s *server) putCache(w http.ResponseWriter, r *http.Request, a Agent) {
	if a.Component != ComponentStep || !a.SavesCaches {
		writeError(w, http.StatusForbidden, "this run may not save caches: only the saving step of a trusted run whose trigger sets cacheWrite does")
		return
	}
	q, err := parseQuery(r.URL.RawQuery, "key")
	name := r.PathValue("name")
	if err == nil {
		err = checkCacheQuery(name, q.Get("key"), nil)
	}
	if err == nil && r.ContentLength < 0 {
		err = bad("a cache's upload needs a Content-Length")
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if r.ContentLength > s.limits.CacheBytes {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("cache %s is %d bytes compressed, more than the %d an entry may have (--max-cache-bytes)", name, r.ContentLength, s.limits.CacheBytes))
		return
	}
	held, err := s.store.CacheBytes(r.Context(), a.Namespace)
	if err != nil {
		s.storeFailed(w, r, err, "")
		return
	}
	if held+r.ContentLength > 2*s.limits.NamespaceCacheBytes {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("namespace %s holds %d bytes of caches, committed and pending: another %d would pass twice --max-namespace-cache-bytes", a.Namespace, held, r.ContentLength))
		return
	}
	release, ok := s.uploadSlot(r.Context(), a.Namespace)
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "the archive is busy storing other uploads; try again")
		return
	}
	defer release()
	start := time.Now()
	e, err := s.store.PutCache(r.Context(), archive.CacheEntry{Namespace: a.Namespace, RepoURL: a.RepoURL, Branch: a.Branch,
		Name: name, Key: q.Get("key"), Size: r.ContentLength, RunUID: a.RunUID}, idleReader(w, http.MaxBytesReader(w, r.Body, r.ContentLength)))
	switch {
	case errors.Is(err, archive.ErrWrongSize) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, os.ErrDeadlineExceeded):
		writeError(w, http.StatusBadRequest, "the upload ended or stalled before its Content-Length")
		return
	case err != nil:
		s.storeFailed(w, r, err, "")
		return
	}
	s.counts.Saved(e.Size, time.Since(start))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = fmt.Fprintf(w, "{\"size\":%d,\"sha256\":%q}\n", e.Size, e.SHA256)
}

// checkCacheQuery refuses names and keys the pipeline parser would not make.
func checkCacheQuery(name, key string, restore []string) error {
	switch {
	case !cacheNameRE.MatchString(name):
		return bad("a cache's name is lowercase letters, digits and '-', at most 32")
	case !cacheKeyRE.MatchString(key):
		return bad("a cache's key is letters, digits, '.', '_' and '-', at most 128")
	case len(restore) > maxRestoreKeys:
		return bad("at most %d restore keys", maxRestoreKeys)
	}
	for _, k := range restore {
		if !cacheKeyRE.MatchString(k) {
			return bad("a restore key is letters, digits, '.', '_' and '-', at most 128")
		}
	}
	return nil
}

// CacheMetrics counts what the archive restores and saves of caches (no label names a
// namespace, as with every metric of the archive).
type CacheMetrics interface {
	// Restore counts one restore: "hit" with the bytes sent, or "miss".
	Restore(result string, bytes int64)
	// Saved counts one saved entry.
	Saved(bytes int64, took time.Duration)
}

type noMetrics struct{}

func (noMetrics) Restore(string, int64)      {}
func (noMetrics) Saved(int64, time.Duration) {}
