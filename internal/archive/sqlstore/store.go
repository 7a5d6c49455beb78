// Package sqlstore is the archive's one SQL store: run records, log states and the
// rows of artifacts and caches in a database reached through database/sql; log
// chunks and the bytes of artifacts and caches in a blob.Blobs. The same SQL runs on
// SQLite (the embedded archive, OpenEmbedded) and PostgreSQL (driver "pgx"): $n
// placeholders, BIGINT Unix-nanosecond times, TEXT documents, INSERT ... ON CONFLICT
// ... DO UPDATE and UPDATE ... RETURNING, which both read alike.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	// The embedded archive's database driver, registered as "sqlite".
	_ "modernc.org/sqlite"

	"github.com/flow-ci/flow-ci/internal/archive"
	"github.com/flow-ci/flow-ci/internal/archive/blob"
)

// store is archive.Store over db and blobs.
type store struct {
	db    *sql.DB
	blobs blob.Blobs
}

// schema creates what is missing and leaves what exists, so that opening an archive
// is also setting it up. Times are Unix nanoseconds (NULL: not set).
var schema = []string{
	`CREATE TABLE IF NOT EXISTS archive_records (
		uid TEXT PRIMARY KEY,
		namespace TEXT NOT NULL,
		name TEXT NOT NULL,
		repo_url TEXT NOT NULL,
		branch TEXT NOT NULL,
		commit_sha TEXT NOT NULL,
		phase TEXT NOT NULL,
		created BIGINT NOT NULL,
		finished BIGINT,
		doc TEXT NOT NULL,
		doc_bytes BIGINT NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS archive_records_namespace_created ON archive_records (namespace, created, uid)`,
	`CREATE INDEX IF NOT EXISTS archive_records_created ON archive_records (created, uid)`,
	`CREATE INDEX IF NOT EXISTS archive_records_name ON archive_records (namespace, name, created)`,
	`CREATE INDEX IF NOT EXISTS archive_records_repo ON archive_records (repo_url, created)`,
	`CREATE INDEX IF NOT EXISTS archive_records_branch ON archive_records (branch, created)`,
	`CREATE INDEX IF NOT EXISTS archive_records_commit ON archive_records (commit_sha)`,
	`CREATE INDEX IF NOT EXISTS archive_records_phase ON archive_records (phase, created)`,
	`CREATE TABLE IF NOT EXISTS archive_logs (
		uid TEXT NOT NULL,
		stream TEXT NOT NULL,
		namespace TEXT NOT NULL,
		bytes BIGINT NOT NULL,
		stored BIGINT NOT NULL,
		chunks BIGINT NOT NULL,
		last_time BIGINT,
		at_last_time BIGINT NOT NULL,
		done BOOLEAN NOT NULL,
		missing TEXT NOT NULL,
		cut BOOLEAN NOT NULL,
		PRIMARY KEY (uid, stream)
	)`,
	`CREATE INDEX IF NOT EXISTS archive_logs_namespace ON archive_logs (namespace)`,
	// blob_id names the artifact's blob (artifactKey): a new one for each write, so
	// that a replaced artifact's row always names a complete blob.
	`CREATE TABLE IF NOT EXISTS archive_artifacts (
		uid TEXT NOT NULL,
		path TEXT NOT NULL,
		namespace TEXT NOT NULL,
		run TEXT NOT NULL,
		step BIGINT NOT NULL,
		step_name TEXT NOT NULL,
		size BIGINT NOT NULL,
		sha256 TEXT NOT NULL,
		blob_id TEXT NOT NULL,
		created BIGINT NOT NULL,
		PRIMARY KEY (uid, path)
	)`,
	`CREATE INDEX IF NOT EXISTS archive_artifacts_namespace ON archive_artifacts (namespace)`,
	// state is cachePending, cacheCommitted or cacheDeleting; the blob is cacheKey(namespace, id).
	`CREATE TABLE IF NOT EXISTS archive_caches (
		id TEXT PRIMARY KEY,
		namespace TEXT NOT NULL,
		repo_url TEXT NOT NULL,
		branch TEXT NOT NULL,
		name TEXT NOT NULL,
		cache_key TEXT NOT NULL,
		size BIGINT NOT NULL,
		sha256 TEXT NOT NULL,
		run_uid TEXT NOT NULL,
		created BIGINT NOT NULL,
		last_used BIGINT NOT NULL,
		state INTEGER NOT NULL
	)`,
	// FindCache: one scope and key (or the scope's keys, for a prefix), newest first.
	`CREATE INDEX IF NOT EXISTS archive_caches_find ON archive_caches
		(namespace, repo_url, name, branch, cache_key, state, created)`,
	// EvictCaches and CacheBytes: a namespace's committed entries, least recently used first.
	`CREATE INDEX IF NOT EXISTS archive_caches_lru ON archive_caches (namespace, state, last_used)`,
	// FinishCaches: a run's pending entries.
	`CREATE INDEX IF NOT EXISTS archive_caches_run ON archive_caches (run_uid, state)`,
	// ExpirePendingCaches: pending entries by age.
	`CREATE INDEX IF NOT EXISTS archive_caches_state ON archive_caches (state, created)`,
}

// Open opens the archive in the database driver and dsn name (registered with
// database/sql: "sqlite", or "pgx" once github.com/jackc/pgx/v5/stdlib is imported),
// with log chunks in blobs, and creates its tables and indexes if missing.
func Open(ctx context.Context, driver, dsn string, blobs blob.Blobs) (archive.Store, error) {
	if blobs == nil {
		return nil, errors.New("open archive: no blob store")
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("open archive database: %w", err)
	}
	s, err := open(ctx, db, blobs)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func open(ctx context.Context, db *sql.DB, blobs blob.Blobs) (*store, error) {
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open archive database: %w", err)
	}
	for _, stmt := range schema {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("create archive schema: %w", err)
		}
	}
	return &store{db: db, blobs: blobs}, nil
}

// sqliteOptions are the embedded database's settings, applied to every connection:
//   - WAL lets readers (the web view) run while the archive writes;
//   - busy_timeout makes a writer wait for another instead of failing;
//   - synchronous NORMAL may lose the last states on power loss but never corrupts
//     the database, and a lost state only makes the next Append overwrite its chunk;
//   - foreign_keys on, as SQLite leaves it off by default;
//   - _txlock=immediate takes the write lock at BEGIN, so that two transactions never
//     both read and then fail to upgrade to writing.
const sqliteOptions = "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
	"&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate"

// OpenEmbedded opens (creating if missing) the archive kept in dir: a SQLite database
// at dir/archive.db and blobs as files under dir/logs (log chunks; artifacts and
// caches under its _artifacts and _caches).
func OpenEmbedded(ctx context.Context, dir string) (archive.Store, error) {
	if dir == "" {
		return nil, errors.New("open archive: the directory is empty")
	}
	// The driver reads everything after a "?" as options.
	if strings.ContainsRune(dir, '?') {
		return nil, fmt.Errorf("open archive: the directory %q contains \"?\"", dir)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("open archive: %w", err)
	}
	blobs, err := blob.Files(filepath.Join(dir, "logs"))
	if err != nil {
		return nil, fmt.Errorf("open archive: %w", err)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, "archive.db")+sqliteOptions)
	if err != nil {
		return nil, fmt.Errorf("open archive database: %w", err)
	}
	// Each new SQLite connection reopens the file and reruns the pragmas: keep the
	// connections the pool opened rather than closing all but two when idle.
	db.SetMaxIdleConns(8)
	s, err := open(ctx, db, blobs)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (s *store) Close() error { return s.db.Close() }
