package sqlstore

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"

	"github.com/flow-ci/flow-ci/internal/archive"
)

// Append stores chunk gzip-compressed as the log's next chunk, then saves the state in
// one statement: the state never counts a chunk that is not stored, and a chunk stored
// but never counted (a crash between the two) is overwritten by the next Append, which
// takes its index from the saved state.
//
// The store owns three fields of the saved state, whatever next says: Chunks (one more
// for a non-empty chunk), Bytes (plus the chunk's length) and Stored (plus its
// compressed length). The caller owns the others (LastTime, AtLastTime, Done, Missing,
// Cut), saved as next gives them.
func (s *store) Append(ctx context.Context, key archive.StreamKey, chunk []byte, next archive.LogState) (archive.LogState, error) {
	if err := checkStreamKey(key); err != nil {
		return archive.LogState{}, fmt.Errorf("append: %w", err)
	}
	if err := checkState(next); err != nil {
		return archive.LogState{}, fmt.Errorf("append to %s/%s: %w", key.UID, key.Stream, err)
	}
	prev, ns, _, err := s.state(ctx, key.UID, key.Stream)
	if err != nil {
		return archive.LogState{}, fmt.Errorf("append to %s/%s: %w", key.UID, key.Stream, err)
	}
	if ns != "" && ns != key.Namespace {
		return archive.LogState{}, fmt.Errorf("append to %s/%s: the log is stored in namespace %s, not %s",
			key.UID, key.Stream, ns, key.Namespace)
	}
	if prev.Done {
		return prev, fmt.Errorf("append to %s/%s: %w", key.UID, key.Stream, archive.ErrComplete)
	}
	st := next
	st.Chunks, st.Bytes, st.Stored = prev.Chunks, prev.Bytes, prev.Stored
	if len(chunk) > 0 {
		gz, err := compress(chunk)
		if err != nil {
			return archive.LogState{}, fmt.Errorf("append to %s/%s: %w", key.UID, key.Stream, err)
		}
		ck := chunkKey(key.Namespace, key.UID, key.Stream, prev.Chunks)
		if err := s.blobs.Put(ctx, ck, gz); err != nil {
			return archive.LogState{}, fmt.Errorf("append to %s/%s: %w", key.UID, key.Stream, err)
		}
		st.Chunks++
		st.Bytes += int64(len(chunk))
		st.Stored += int64(len(gz))
	}
	if err := s.saveState(ctx, key, prev.Chunks, st); err != nil {
		return archive.LogState{}, fmt.Errorf("append to %s/%s: %w", key.UID, key.Stream, err)
	}
	return st, nil
}

// saveState upserts the log's state on the condition that its chunk count is still
// prevChunks: a second writer of the same log would otherwise count the one chunk
// both wrote under the same key twice.
func (s *store) saveState(ctx context.Context, key archive.StreamKey, prevChunks int, st archive.LogState) error {
	res, err := s.db.ExecContext(ctx, `INSERT INTO archive_logs
		(uid, stream, namespace, bytes, stored, chunks, last_time, at_last_time, done, missing, cut)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (uid, stream) DO UPDATE SET
			bytes = excluded.bytes, stored = excluded.stored, chunks = excluded.chunks,
			last_time = excluded.last_time, at_last_time = excluded.at_last_time,
			done = excluded.done, missing = excluded.missing, cut = excluded.cut
		WHERE archive_logs.chunks = $12`,
		key.UID, key.Stream, key.Namespace, st.Bytes, st.Stored, st.Chunks,
		nanos(st.LastTime), st.AtLastTime, st.Done, st.Missing, st.Cut, prevChunks)
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if n != 1 {
		return errors.New("save state: another writer appended to the log at the same time")
	}
	return nil
}

func compress(chunk []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(chunk); err != nil {
		return nil, fmt.Errorf("compress: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress: %w", err)
	}
	return buf.Bytes(), nil
}

// stateColumns are the columns scanState reads, in its order.
const stateColumns = "namespace, bytes, stored, chunks, last_time, at_last_time, done, missing, cut"

// state is a log's saved state and the namespace it is stored in; ok is false (and
// ns "") when nothing was saved.
func (s *store) state(ctx context.Context, uid, stream string) (st archive.LogState, ns string, ok bool, err error) {
	row := s.db.QueryRowContext(ctx,
		"SELECT "+stateColumns+" FROM archive_logs WHERE uid = $1 AND stream = $2", uid, stream)
	st, ns, err = scanState(row)
	if errors.Is(err, sql.ErrNoRows) {
		return archive.LogState{}, "", false, nil
	}
	if err != nil {
		return archive.LogState{}, "", false, fmt.Errorf("read state: %w", err)
	}
	return st, ns, true, nil
}

// scanState reads the stateColumns of a row, then the columns after them into more.
func scanState(row interface{ Scan(...any) error }, more ...any) (archive.LogState, string, error) {
	var (
		st   archive.LogState
		ns   string
		last sql.NullInt64
	)
	dest := []any{&ns, &st.Bytes, &st.Stored, &st.Chunks, &last, &st.AtLastTime, &st.Done, &st.Missing, &st.Cut}
	err := row.Scan(append(dest, more...)...)
	if err != nil {
		return archive.LogState{}, "", err
	}
	st.LastTime = fromNanos(last)
	return st, ns, nil
}

// State finds a log in key.Namespace, or in any namespace when it is "".
func (s *store) State(ctx context.Context, key archive.StreamKey) (archive.LogState, bool, error) {
	if err := checkReadKey(key); err != nil {
		return archive.LogState{}, false, fmt.Errorf("log state: %w", err)
	}
	st, ns, ok, err := s.state(ctx, key.UID, key.Stream)
	if err != nil {
		return archive.LogState{}, false, fmt.Errorf("log %s/%s: %w", key.UID, key.Stream, err)
	}
	if !ok || key.Namespace != "" && ns != key.Namespace {
		return archive.LogState{}, false, nil
	}
	return st, true, nil
}

func (s *store) Streams(ctx context.Context, uid string) ([]archive.Stream, error) {
	if err := checkUID(uid); err != nil {
		return nil, fmt.Errorf("streams: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+stateColumns+
		", stream FROM archive_logs WHERE uid = $1 ORDER BY stream", uid)
	if err != nil {
		return nil, fmt.Errorf("streams of %s: %w", uid, err)
	}
	defer rows.Close()
	var out []archive.Stream
	for rows.Next() {
		var name string
		st, _, err := scanState(rows, &name)
		if err != nil {
			return nil, fmt.Errorf("streams of %s: %w", uid, err)
		}
		out = append(out, archive.Stream{Stream: name, State: st})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("streams of %s: %w", uid, err)
	}
	return out, nil
}

// OpenLog finds the log in key.Namespace, or in any namespace when it is "". The
// reader fetches the chunks with ctx, one at a time as they are read.
func (s *store) OpenLog(ctx context.Context, key archive.StreamKey) (io.ReadCloser, error) {
	if err := checkReadKey(key); err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	st, ns, ok, err := s.state(ctx, key.UID, key.Stream)
	if err != nil {
		return nil, fmt.Errorf("open log %s/%s: %w", key.UID, key.Stream, err)
	}
	if !ok || key.Namespace != "" && ns != key.Namespace {
		return nil, fmt.Errorf("log %s/%s: %w", key.UID, key.Stream, archive.ErrNotFound)
	}
	return &logReader{ctx: ctx, s: s, ns: ns, uid: key.UID, stream: key.Stream, state: st}, nil
}
