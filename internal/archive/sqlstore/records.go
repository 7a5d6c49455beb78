package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/flow-ci/flow-ci/internal/archive"
)

// recordColumns are the columns scanRecord reads, in its order.
const recordColumns = "uid, namespace, name, repo_url, branch, commit_sha, phase, created, finished, doc"

func (s *store) PutRecord(ctx context.Context, r archive.Record) error {
	if err := checkRecord(r); err != nil {
		return fmt.Errorf("put record: %w", err)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO archive_records
		(uid, namespace, name, repo_url, branch, commit_sha, phase, created, finished, doc, doc_bytes)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (uid) DO UPDATE SET
			namespace = excluded.namespace, name = excluded.name, repo_url = excluded.repo_url,
			branch = excluded.branch, commit_sha = excluded.commit_sha, phase = excluded.phase,
			created = excluded.created, finished = excluded.finished, doc = excluded.doc,
			doc_bytes = excluded.doc_bytes`,
		r.UID, r.Namespace, r.Name, r.RepoURL, r.Branch, r.Commit, r.Phase,
		r.Created.UnixNano(), nanos(r.Finished), string(r.Doc), len(r.Doc))
	if err != nil {
		return fmt.Errorf("put record %s: %w", r.UID, err)
	}
	return nil
}

func (s *store) Record(ctx context.Context, namespace, name string) (archive.Record, error) {
	if err := checkNamespace(namespace); err != nil {
		return archive.Record{}, err
	}
	if err := checkName(name); err != nil {
		return archive.Record{}, err
	}
	// A name is reused by a later run once the earlier one is deleted from the
	// cluster: the newest is the run the name means now.
	row := s.db.QueryRowContext(ctx, "SELECT "+recordColumns+` FROM archive_records
		WHERE namespace = $1 AND name = $2 ORDER BY created DESC, uid DESC LIMIT 1`, namespace, name)
	r, err := scanRecord(row)
	if errors.Is(err, sql.ErrNoRows) {
		return archive.Record{}, fmt.Errorf("run %s/%s: %w", namespace, name, archive.ErrNotFound)
	}
	if err != nil {
		return archive.Record{}, fmt.Errorf("read record %s/%s: %w", namespace, name, err)
	}
	return r, nil
}

func (s *store) RecordByUID(ctx context.Context, uid string) (archive.Record, error) {
	if err := checkUID(uid); err != nil {
		return archive.Record{}, err
	}
	row := s.db.QueryRowContext(ctx, "SELECT "+recordColumns+" FROM archive_records WHERE uid = $1", uid)
	r, err := scanRecord(row)
	if errors.Is(err, sql.ErrNoRows) {
		return archive.Record{}, fmt.Errorf("run %s: %w", uid, archive.ErrNotFound)
	}
	if err != nil {
		return archive.Record{}, fmt.Errorf("read record %s: %w", uid, err)
	}
	return r, nil
}

func (s *store) List(ctx context.Context, q archive.Query) ([]archive.Record, string, error) {
	limit, err := pageSize(q.Limit)
	if err != nil {
		return nil, "", fmt.Errorf("list records: %w", err)
	}
	query, args, err := listQuery(q, limit)
	if err != nil {
		return nil, "", fmt.Errorf("list records: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list records: %w", err)
	}
	defer rows.Close()
	var out []archive.Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, "", fmt.Errorf("list records: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list records: %w", err)
	}
	if len(out) <= limit {
		return out, "", nil
	}
	out = out[:limit]
	last := out[limit-1]
	return out, cursor{oldest: q.Oldest, created: last.Created.UnixNano(), uid: last.UID}.encode(), nil
}

// Delete removes the run's blobs (log chunks, artifacts) first and its rows after: if
// it stops halfway, the rows still name the namespaces to delete from, and
// retention's next pass finishes.
func (s *store) Delete(ctx context.Context, uid string) error {
	if err := checkUID(uid); err != nil {
		return err
	}
	namespaces, err := s.namespacesOf(ctx, uid)
	if err != nil {
		return fmt.Errorf("delete run %s: %w", uid, err)
	}
	for _, ns := range namespaces {
		if err := s.blobs.DeletePrefix(ctx, runPrefix(ns, uid)); err != nil {
			return fmt.Errorf("delete run %s: logs: %w", uid, err)
		}
		if err := s.blobs.DeletePrefix(ctx, artifactPrefix(ns, uid)); err != nil {
			return fmt.Errorf("delete run %s: artifacts: %w", uid, err)
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete run %s: %w", uid, err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, stmt := range []string{
		"DELETE FROM archive_logs WHERE uid = $1",
		"DELETE FROM archive_artifacts WHERE uid = $1",
		"DELETE FROM archive_records WHERE uid = $1",
	} {
		if _, err := tx.ExecContext(ctx, stmt, uid); err != nil {
			return fmt.Errorf("delete run %s: %w", uid, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete run %s: %w", uid, err)
	}
	return nil
}

// namespacesOf lists the namespaces a run's record, logs and artifacts name: a run's
// logs and artifacts are stored before its record, and any of them may be all that is
// left of it.
func (s *store) namespacesOf(ctx context.Context, uid string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT namespace FROM archive_records WHERE uid = $1
		UNION SELECT namespace FROM archive_logs WHERE uid = $1
		UNION SELECT namespace FROM archive_artifacts WHERE uid = $1`, uid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var ns string
		if err := rows.Scan(&ns); err != nil {
			return nil, err
		}
		if err := checkNamespace(ns); err != nil {
			return nil, fmt.Errorf("stored %w", err)
		}
		out = append(out, ns)
	}
	return out, rows.Err()
}

// Usage casts its sums because PostgreSQL sums BIGINTs as NUMERIC.
func (s *store) Usage(ctx context.Context) ([]archive.Usage, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT namespace, CAST(SUM(records) AS BIGINT), CAST(SUM(stored) AS BIGINT) FROM (
			SELECT namespace, COUNT(*) AS records, SUM(doc_bytes) AS stored
				FROM archive_records GROUP BY namespace
			UNION ALL
			SELECT namespace, 0 AS records, SUM(stored) AS stored
				FROM archive_logs GROUP BY namespace
		) AS per_namespace GROUP BY namespace ORDER BY namespace`)
	if err != nil {
		return nil, fmt.Errorf("archive usage: %w", err)
	}
	defer rows.Close()
	var out []archive.Usage
	for rows.Next() {
		var u archive.Usage
		if err := rows.Scan(&u.Namespace, &u.Records, &u.Stored); err != nil {
			return nil, fmt.Errorf("archive usage: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("archive usage: %w", err)
	}
	return out, nil
}

// scanRecord reads the recordColumns of a row.
func scanRecord(row interface{ Scan(...any) error }) (archive.Record, error) {
	var (
		r        archive.Record
		created  int64
		finished sql.NullInt64
		doc      string
	)
	err := row.Scan(&r.UID, &r.Namespace, &r.Name, &r.RepoURL, &r.Branch, &r.Commit, &r.Phase,
		&created, &finished, &doc)
	if err != nil {
		return archive.Record{}, err
	}
	r.Created = time.Unix(0, created).UTC()
	r.Finished = fromNanos(finished)
	if doc != "" {
		r.Doc = []byte(doc)
	}
	return r, nil
}

// nanos is t as the store keeps it: Unix nanoseconds, NULL for the zero time (whose
// Unix nanoseconds int64 cannot hold).
func nanos(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}
}

func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}
