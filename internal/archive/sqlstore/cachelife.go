package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/flow-ci/flow-ci/internal/archive"
)

// A cache entry is deleted in three steps: its row turns cacheDeleting (so it is no
// longer found), its blob is deleted, then its row. A crash between leaves a row that
// is not found and that ExpirePendingCaches deletes; never a findable row without
// its blob.

// FinishCaches takes the run's pending entries oldest first, so that of two entries
// the run saved under one key (a retried step) the newer is the one left committed.
func (s *store) FinishCaches(ctx context.Context, runUID string, commit bool) (int, error) {
	if err := checkUID(runUID); err != nil {
		return 0, fmt.Errorf("finish caches: %w", err)
	}
	pending, err := s.cacheList(ctx, `SELECT `+cacheColumns+` FROM archive_caches
		WHERE run_uid = $1 AND state = $2 ORDER BY created, id`, runUID, cachePending)
	if err != nil {
		return 0, fmt.Errorf("finish caches of run %s: %w", runUID, err)
	}
	n := 0
	for _, e := range pending {
		var done bool
		if commit {
			done, err = s.commitCache(ctx, e)
		} else {
			done, err = s.deleteCache(ctx, e, cachePending)
		}
		if err != nil {
			return n, fmt.Errorf("finish caches of run %s: %w", runUID, err)
		}
		if done {
			n++
		}
	}
	return n, nil
}

// commitCache makes e committed and the committed entries it supersedes deleting in
// one transaction, then deletes those; false when e was no longer pending (another
// caller finished or expired it since it was listed). Two runs committing one key at
// once may both stay committed (neither saw the other's entry committed): FindCache
// takes the newer, and the key's next commit supersedes both.
func (s *store) commitCache(ctx context.Context, e archive.CacheEntry) (bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("commit cache %s: %w", e.ID, err)
	}
	defer func() { _ = tx.Rollback() }()
	taken, err := moveCache(ctx, tx, e.ID, cachePending, cacheCommitted)
	if err != nil || !taken {
		return false, err
	}
	rows, err := tx.QueryContext(ctx, `UPDATE archive_caches SET state = $1
		WHERE namespace = $2 AND repo_url = $3 AND branch = $4 AND name = $5 AND cache_key = $6
			AND state = $7 AND id <> $8 RETURNING id`,
		cacheDeleting, e.Namespace, e.RepoURL, e.Branch, e.Name, e.Key, cacheCommitted, e.ID)
	if err != nil {
		return false, fmt.Errorf("commit cache %s: %w", e.ID, err)
	}
	superseded, err := scanIDs(rows)
	if err != nil {
		return false, fmt.Errorf("commit cache %s: %w", e.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("commit cache %s: %w", e.ID, err)
	}
	for _, id := range superseded {
		if err := s.dropCache(ctx, e.Namespace, id); err != nil {
			return true, fmt.Errorf("commit cache %s: %w", e.ID, err)
		}
	}
	return true, nil
}

// EvictCaches reads the namespace's least recently used committed entries a batch at
// a time and deletes them one by one until the namespace fits. An entry another
// caller takes first (a commit that supersedes it, another eviction) is skipped and
// not counted.
func (s *store) EvictCaches(ctx context.Context, namespace string, maxBytes int64) (int, int64, error) {
	if maxBytes < 0 {
		return 0, 0, fmt.Errorf("evict caches: maxBytes %d is negative", maxBytes)
	}
	if err := checkNamespace(namespace); err != nil {
		return 0, 0, fmt.Errorf("evict caches: %w", err)
	}
	var total int64
	err := s.db.QueryRowContext(ctx, `SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT)
		FROM archive_caches WHERE namespace = $1 AND state = $2`, namespace, cacheCommitted).Scan(&total)
	if err != nil {
		return 0, 0, fmt.Errorf("evict caches of %s: %w", namespace, err)
	}
	evicted, freed := 0, int64(0)
	for total > maxBytes {
		batch, err := s.cacheList(ctx, "SELECT "+cacheColumns+` FROM archive_caches
			WHERE namespace = $1 AND state = $2 ORDER BY last_used, id LIMIT 64`, namespace, cacheCommitted)
		if err != nil {
			return evicted, freed, fmt.Errorf("evict caches of %s: %w", namespace, err)
		}
		if len(batch) == 0 {
			break // what is left is pending
		}
		for _, e := range batch {
			if total <= maxBytes {
				break
			}
			deleted, err := s.deleteCache(ctx, e, cacheCommitted)
			if err != nil {
				return evicted, freed, fmt.Errorf("evict caches of %s: %w", namespace, err)
			}
			if !deleted {
				continue
			}
			total -= e.Size
			evicted++
			freed += e.Size
		}
	}
	return evicted, freed, nil
}

// ExpirePendingCaches also finishes deleting the entries a crash left deleting; it
// counts only the pending ones.
func (s *store) ExpirePendingCaches(ctx context.Context, olderThan time.Time) (int, error) {
	if olderThan.IsZero() {
		return 0, fmt.Errorf("expire caches: olderThan is not set")
	}
	if err := checkTime("olderThan", olderThan); err != nil {
		return 0, fmt.Errorf("expire caches: %w", err)
	}
	n := 0
	for _, from := range []int{cachePending, cacheDeleting} {
		query := "SELECT " + cacheColumns + " FROM archive_caches WHERE state = $1 AND created < $2"
		args := []any{from, olderThan.UnixNano()}
		if from == cacheDeleting {
			query, args = "SELECT "+cacheColumns+" FROM archive_caches WHERE state = $1", args[:1]
		}
		stale, err := s.cacheList(ctx, query, args...)
		if err != nil {
			return n, fmt.Errorf("expire caches: %w", err)
		}
		for _, e := range stale {
			deleted, err := s.deleteCache(ctx, e, from)
			if err != nil {
				return n, fmt.Errorf("expire caches: %w", err)
			}
			if deleted && from == cachePending {
				n++
			}
		}
	}
	return n, nil
}

// deleteCache deletes entry e, which is in state from: it takes it from that state to
// cacheDeleting (false when it is no longer there: another caller took it), then
// drops it.
func (s *store) deleteCache(ctx context.Context, e archive.CacheEntry, from int) (bool, error) {
	if from != cacheDeleting {
		taken, err := moveCache(ctx, s.db, e.ID, from, cacheDeleting)
		if err != nil || !taken {
			return false, err
		}
	}
	return true, s.dropCache(ctx, e.Namespace, e.ID)
}

// moveCache changes entry id from state from to state to; false when it was not in
// state from.
func moveCache(ctx context.Context, db interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, id string, from, to int) (bool, error) {
	res, err := db.ExecContext(ctx, "UPDATE archive_caches SET state = $1 WHERE id = $2 AND state = $3", to, id, from)
	if err != nil {
		return false, fmt.Errorf("cache %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("cache %s: %w", id, err)
	}
	return n == 1, nil
}

// dropCache deletes an entry that is no longer found (pending or deleting): its blob,
// then its row.
func (s *store) dropCache(ctx context.Context, namespace, id string) error {
	if err := s.deleteBlob(ctx, cacheKey(namespace, id)); err != nil {
		return fmt.Errorf("delete cache %s: %w", id, err)
	}
	if _, err := s.db.ExecContext(ctx, "DELETE FROM archive_caches WHERE id = $1", id); err != nil {
		return fmt.Errorf("delete cache %s: %w", id, err)
	}
	return nil
}

// cacheList runs a query of cacheColumns.
func (s *store) cacheList(ctx context.Context, query string, args ...any) ([]archive.CacheEntry, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []archive.CacheEntry
	for rows.Next() {
		e, err := scanCache(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// scanIDs reads the one column of rows, and closes them.
func scanIDs(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
