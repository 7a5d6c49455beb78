package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/flow-ci/flow-ci/internal/archive"
)

// The states of a cache entry. Only committed entries are found and opened; an entry
// is deleting from the moment eviction or a newer commit took it from the committed,
// so that a crash during its deletion leaves it unfindable, and ExpirePendingCaches
// finishes deleting it.
const (
	cachePending   = 0
	cacheCommitted = 1
	cacheDeleting  = 2
)

// Limits of a CacheQuery: FindCache runs a query for each branch and key, so that
// each one is an index lookup.
const (
	maxBranches    = 4
	maxRestoreKeys = 16
)

// cacheColumns are the columns scanCache reads, in its order.
const cacheColumns = "id, namespace, repo_url, branch, name, cache_key, size, sha256, run_uid, created, last_used, state"

// PutCache stores the body under a new ID, then writes the entry's row, pending.
func (s *store) PutCache(ctx context.Context, e archive.CacheEntry, body io.Reader) (archive.CacheEntry, error) {
	if err := checkCacheEntry(e); err != nil {
		return archive.CacheEntry{}, fmt.Errorf("put cache: %w", err)
	}
	if e.Created.IsZero() {
		e.Created = time.Now()
	}
	e.Created = e.Created.UTC()
	e.LastUsed, e.Committed = e.Created, false
	id, err := newID()
	if err != nil {
		return archive.CacheEntry{}, fmt.Errorf("put cache %q: %w", e.Name, err)
	}
	e.ID = id
	key := cacheKey(e.Namespace, id)
	if e.SHA256, err = s.storeBody(ctx, key, body, e.Size); err != nil {
		return archive.CacheEntry{}, fmt.Errorf("put cache %q: %w", e.Name, err)
	}
	_, err = s.db.ExecContext(ctx, "INSERT INTO archive_caches ("+cacheColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		e.ID, e.Namespace, e.RepoURL, e.Branch, e.Name, e.Key, e.Size, e.SHA256, e.RunUID,
		e.Created.UnixNano(), e.LastUsed.UnixNano(), cachePending)
	if err != nil {
		_ = s.deleteBlob(ctx, key)
		return archive.CacheEntry{}, fmt.Errorf("put cache %q: %w", e.Name, err)
	}
	return e, nil
}

// FindCache runs one query per step, in q's order, and stops at the first that
// finds an entry. A restore key is compared with the start of each key by substr
// rather than LIKE: LIKE would need '%' and '_' escaped, and SQLite's ignores case,
// PostgreSQL's does not. A prefix step reads the index down to the branch and filters
// its keys, which eviction keeps few.
func (s *store) FindCache(ctx context.Context, q archive.CacheQuery) (archive.CacheEntry, error) {
	if err := checkCacheQuery(q); err != nil {
		return archive.CacheEntry{}, fmt.Errorf("find cache: %w", err)
	}
	var branches []string
	for _, b := range q.Branches {
		if !slices.Contains(branches, b) {
			branches = append(branches, b)
		}
	}
	type step struct {
		cond string
		args []any
	}
	var steps []step
	for _, b := range branches {
		steps = append(steps, step{"branch = ? AND cache_key = ?", []any{b, q.Key}})
	}
	for _, prefix := range q.RestoreKeys {
		for _, b := range branches {
			steps = append(steps, step{"branch = ? AND substr(cache_key, 1, ?) = ?",
				[]any{b, utf8.RuneCountInString(prefix), prefix}})
		}
	}
	for _, st := range steps {
		var c conds
		c.add("namespace = ? AND repo_url = ? AND name = ?", q.Namespace, q.RepoURL, q.Name)
		c.add(st.cond, st.args...)
		c.add("state = ?", cacheCommitted)
		e, err := scanCache(s.db.QueryRowContext(ctx, "SELECT "+cacheColumns+" FROM archive_caches"+
			c.sql()+" ORDER BY created DESC, id DESC LIMIT 1", c.args...))
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return archive.CacheEntry{}, fmt.Errorf("find cache %q: %w", q.Name, err)
		}
		return e, nil
	}
	return archive.CacheEntry{}, fmt.Errorf("cache %q for key %q: %w", q.Name, q.Key, archive.ErrNotFound)
}

// OpenCache touches and reads the entry in one statement, which finds it only while
// it is committed.
func (s *store) OpenCache(ctx context.Context, id string) (io.ReadCloser, archive.CacheEntry, error) {
	if err := checkCacheID(id); err != nil {
		return nil, archive.CacheEntry{}, fmt.Errorf("open cache: %w", err)
	}
	e, err := scanCache(s.db.QueryRowContext(ctx, `UPDATE archive_caches SET last_used = $1
		WHERE id = $2 AND state = $3 RETURNING `+cacheColumns, time.Now().UnixNano(), id, cacheCommitted))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, archive.CacheEntry{}, fmt.Errorf("cache %s: %w", id, archive.ErrNotFound)
	}
	if err != nil {
		return nil, archive.CacheEntry{}, fmt.Errorf("open cache %s: %w", id, err)
	}
	body, err := s.blobs.Get(ctx, cacheKey(e.Namespace, id))
	if errors.Is(err, archive.ErrNotFound) {
		// Not ErrNotFound to the caller: the entry exists, and its bytes are lost.
		return nil, archive.CacheEntry{}, fmt.Errorf("cache %s: its blob is missing from the blob store", id)
	}
	if err != nil {
		return nil, archive.CacheEntry{}, fmt.Errorf("open cache %s: %w", id, err)
	}
	return body, e, nil
}

// CacheBytes counts entries in every state: pending and deleting ones hold blobs too.
// It casts its sum because PostgreSQL sums BIGINTs as NUMERIC.
func (s *store) CacheBytes(ctx context.Context, namespace string) (int64, error) {
	if err := checkNamespace(namespace); err != nil {
		return 0, fmt.Errorf("cache bytes: %w", err)
	}
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT)
		FROM archive_caches WHERE namespace = $1`, namespace).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("cache bytes of %s: %w", namespace, err)
	}
	return n, nil
}

// scanCache reads the cacheColumns of a row.
func scanCache(row interface{ Scan(...any) error }) (archive.CacheEntry, error) {
	var (
		e                 archive.CacheEntry
		created, lastUsed int64
		state             int
	)
	err := row.Scan(&e.ID, &e.Namespace, &e.RepoURL, &e.Branch, &e.Name, &e.Key, &e.Size, &e.SHA256,
		&e.RunUID, &created, &lastUsed, &state)
	if err != nil {
		return archive.CacheEntry{}, err
	}
	if err := checkCacheID(e.ID); err != nil {
		return archive.CacheEntry{}, fmt.Errorf("stored %w", err)
	}
	e.Created = time.Unix(0, created).UTC()
	e.LastUsed = time.Unix(0, lastUsed).UTC()
	e.Committed = state == cacheCommitted
	return e, nil
}

// checkCacheEntry checks what PutCache is given; the fields the store sets are not
// looked at.
func checkCacheEntry(e archive.CacheEntry) error {
	if err := checkCacheScope(e.Namespace, e.RepoURL, e.Name); err != nil {
		return err
	}
	if err := checkRequired("Branch", e.Branch, maxText); err != nil {
		return err
	}
	if err := checkRequired("Key", e.Key, maxText); err != nil {
		return err
	}
	if e.Size < 0 {
		return fmt.Errorf("size %d is negative", e.Size)
	}
	if err := checkUID(e.RunUID); err != nil {
		return fmt.Errorf("run %w", err)
	}
	return checkTime("Created", e.Created)
}

func checkCacheQuery(q archive.CacheQuery) error {
	if err := checkCacheScope(q.Namespace, q.RepoURL, q.Name); err != nil {
		return err
	}
	if err := checkRequired("Key", q.Key, maxText); err != nil {
		return err
	}
	if len(q.Branches) == 0 || len(q.Branches) > maxBranches {
		return fmt.Errorf("%d branches: give 1 to %d", len(q.Branches), maxBranches)
	}
	for _, b := range q.Branches {
		if err := checkRequired("branch", b, maxText); err != nil {
			return err
		}
	}
	if len(q.RestoreKeys) > maxRestoreKeys {
		return fmt.Errorf("%d restore keys: give at most %d", len(q.RestoreKeys), maxRestoreKeys)
	}
	for _, k := range q.RestoreKeys {
		// "" would restore any key of the cache: surely a mistake in what made the list.
		if err := checkRequired("restore key", k, maxText); err != nil {
			return err
		}
	}
	return nil
}

// checkCacheScope checks what every entry and query names.
func checkCacheScope(namespace, repoURL, name string) error {
	if err := checkNamespace(namespace); err != nil {
		return err
	}
	if err := checkRequired("RepoURL", repoURL, maxText); err != nil {
		return err
	}
	return checkRequired("Name", name, maxName)
}

// checkRequired is checkText of a value that must not be empty.
func checkRequired(what, s string, limit int) error {
	if s == "" {
		return fmt.Errorf("%s is empty", what)
	}
	return checkText(what, s, limit)
}

func checkCacheID(id string) error {
	if len(id) != idLen {
		return fmt.Errorf("cache id %.40q is not %d characters", id, idLen)
	}
	return checkToken("cache id", id, idLen)
}
