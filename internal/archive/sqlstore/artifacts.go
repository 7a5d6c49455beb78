package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/flow-ci/flow-ci/internal/archive"
)

// artifactColumns are the columns scanArtifact reads, in its order.
const artifactColumns = "uid, namespace, run, step, step_name, path, size, sha256, created, blob_id"

// maxStep bounds a step's index: far more steps than a run has.
const maxStep = 1 << 20

// PutArtifact stores the body in a blob of its own, then writes the row, then
// deletes the blob of the row it replaced (if any).
func (s *store) PutArtifact(ctx context.Context, a archive.Artifact, body io.Reader) (archive.Artifact, error) {
	if err := checkArtifact(a); err != nil {
		return archive.Artifact{}, fmt.Errorf("put artifact: %w", err)
	}
	if a.Created.IsZero() {
		a.Created = time.Now()
	}
	a.Created = a.Created.UTC()
	id, err := newID()
	if err != nil {
		return archive.Artifact{}, fmt.Errorf("put artifact %q of run %s: %w", a.Path, a.UID, err)
	}
	key := artifactKey(a.Namespace, a.UID, id)
	if a.SHA256, err = s.storeBody(ctx, key, body, a.Size); err != nil {
		return archive.Artifact{}, fmt.Errorf("put artifact %q of run %s: %w", a.Path, a.UID, err)
	}
	replaced, err := s.saveArtifact(ctx, a, id)
	if err != nil {
		_ = s.deleteBlob(ctx, key)
		return archive.Artifact{}, fmt.Errorf("put artifact %q of run %s: %w", a.Path, a.UID, err)
	}
	if replaced != "" {
		// Best effort: a blob left here is under the run's prefix, and goes with it.
		_ = s.deleteBlob(ctx, artifactKey(a.Namespace, a.UID, replaced))
	}
	return a, nil
}

// saveArtifact writes a's row naming the blob blobID and returns the blob ID of the
// row it replaced ("" when there was none). It replaces only the row it read, so
// that of two writers of one path each learns the blob it replaced: a writer that
// loses the race reads again.
func (s *store) saveArtifact(ctx context.Context, a archive.Artifact, blobID string) (string, error) {
	for range 5 {
		old, err := s.artifact(ctx, a.UID, a.Path) // none: blobID ""
		switch {
		case err != nil && !errors.Is(err, archive.ErrNotFound):
			return "", err
		case err == nil && old.Namespace != a.Namespace:
			return "", fmt.Errorf("the run's artifact is stored in namespace %s, not %s", old.Namespace, a.Namespace)
		}
		res, err := s.db.ExecContext(ctx, `INSERT INTO archive_artifacts
			(uid, path, namespace, run, step, step_name, size, sha256, blob_id, created)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (uid, path) DO UPDATE SET
				run = excluded.run, step = excluded.step, step_name = excluded.step_name,
				size = excluded.size, sha256 = excluded.sha256, blob_id = excluded.blob_id,
				created = excluded.created
			WHERE archive_artifacts.blob_id = $11`,
			a.UID, a.Path, a.Namespace, a.Run, a.Step, a.StepName, a.Size, a.SHA256, blobID,
			a.Created.UnixNano(), old.blobID)
		if err != nil {
			return "", fmt.Errorf("save artifact: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return "", fmt.Errorf("save artifact: %w", err)
		}
		if n == 1 {
			return old.blobID, nil
		}
	}
	return "", errors.New("save artifact: other writers kept replacing it at the same time")
}

// storedArtifact is an artifact's row: the artifact and its blob.
type storedArtifact struct {
	archive.Artifact
	blobID string
}

// artifact reads the row of the run's artifact at path.
func (s *store) artifact(ctx context.Context, uid, path string) (storedArtifact, error) {
	row := s.db.QueryRowContext(ctx, "SELECT "+artifactColumns+
		" FROM archive_artifacts WHERE uid = $1 AND path = $2", uid, path)
	a, err := scanArtifact(row)
	if errors.Is(err, sql.ErrNoRows) {
		return storedArtifact{}, fmt.Errorf("artifact %q of run %s: %w", path, uid, archive.ErrNotFound)
	}
	if err != nil {
		return storedArtifact{}, fmt.Errorf("read artifact %q of run %s: %w", path, uid, err)
	}
	return a, nil
}

// Artifacts sorts in Go rather than in SQL: PostgreSQL orders TEXT by the database's
// collation, which need not be byte-wise as SQLite's is.
func (s *store) Artifacts(ctx context.Context, uid string) ([]archive.Artifact, error) {
	if err := checkUID(uid); err != nil {
		return nil, fmt.Errorf("artifacts: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+artifactColumns+" FROM archive_artifacts WHERE uid = $1", uid)
	if err != nil {
		return nil, fmt.Errorf("artifacts of %s: %w", uid, err)
	}
	defer rows.Close()
	var out []archive.Artifact
	for rows.Next() {
		a, err := scanArtifact(rows)
		if err != nil {
			return nil, fmt.Errorf("artifacts of %s: %w", uid, err)
		}
		out = append(out, a.Artifact)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("artifacts of %s: %w", uid, err)
	}
	slices.SortFunc(out, func(a, b archive.Artifact) int {
		return cmp.Or(cmp.Compare(a.Step, b.Step), strings.Compare(a.Path, b.Path))
	})
	return out, nil
}

// OpenArtifact reads the row, then opens the blob it names. A blob missing because a
// replacement deleted it between the two is read again from the new row.
func (s *store) OpenArtifact(ctx context.Context, uid, path string) (io.ReadCloser, archive.Artifact, error) {
	if err := checkUID(uid); err != nil {
		return nil, archive.Artifact{}, fmt.Errorf("open artifact: %w", err)
	}
	if err := checkArtifactPath(path); err != nil {
		return nil, archive.Artifact{}, fmt.Errorf("open artifact: %w", err)
	}
	for range 3 {
		a, err := s.artifact(ctx, uid, path)
		if err != nil {
			return nil, archive.Artifact{}, err
		}
		body, err := s.blobs.Get(ctx, artifactKey(a.Namespace, uid, a.blobID))
		if err == nil {
			return body, a.Artifact, nil
		}
		if !errors.Is(err, archive.ErrNotFound) {
			return nil, archive.Artifact{}, fmt.Errorf("open artifact %q of run %s: %w", path, uid, err)
		}
		now, err := s.artifact(ctx, uid, path)
		if err == nil && now.blobID == a.blobID {
			// Not ErrNotFound to the caller: the artifact exists, and its bytes are lost.
			return nil, archive.Artifact{}, fmt.Errorf("artifact %q of run %s: its blob is missing from the blob store", path, uid)
		}
	}
	return nil, archive.Artifact{}, fmt.Errorf("open artifact %q of run %s: it kept being replaced while opened", path, uid)
}

// ArtifactBytes casts its sum because PostgreSQL sums BIGINTs as NUMERIC.
func (s *store) ArtifactBytes(ctx context.Context, namespace string) (int64, error) {
	if err := checkNamespace(namespace); err != nil {
		return 0, fmt.Errorf("artifact bytes: %w", err)
	}
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT)
		FROM archive_artifacts WHERE namespace = $1`, namespace).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("artifact bytes of %s: %w", namespace, err)
	}
	return n, nil
}

// scanArtifact reads the artifactColumns of a row.
func scanArtifact(row interface{ Scan(...any) error }) (storedArtifact, error) {
	var (
		a       storedArtifact
		created int64
	)
	err := row.Scan(&a.UID, &a.Namespace, &a.Run, &a.Step, &a.StepName, &a.Path, &a.Size, &a.SHA256,
		&created, &a.blobID)
	if err != nil {
		return storedArtifact{}, err
	}
	a.Created = time.Unix(0, created).UTC()
	if len(a.blobID) != idLen || checkToken("blob id", a.blobID, idLen) != nil {
		return storedArtifact{}, fmt.Errorf("stored artifact %q of run %s names blob %q, not one newID makes", a.Path, a.UID, a.blobID)
	}
	return a, nil
}

// checkArtifact checks what PutArtifact is given. The path is the caller's to
// validate (relative, cleaned); the store only keeps it as text, in rows, never in a
// blob key.
func checkArtifact(a archive.Artifact) error {
	if err := checkUID(a.UID); err != nil {
		return err
	}
	if err := checkNamespace(a.Namespace); err != nil {
		return err
	}
	if err := checkName(a.Run); err != nil {
		return fmt.Errorf("run %w", err)
	}
	if a.Step < 0 || a.Step > maxStep {
		return fmt.Errorf("step %d is outside 0 to %d", a.Step, maxStep)
	}
	if err := checkText("StepName", a.StepName, maxName); err != nil {
		return err
	}
	if err := checkArtifactPath(a.Path); err != nil {
		return err
	}
	if a.Size < 0 {
		return fmt.Errorf("size %d is negative", a.Size)
	}
	return checkTime("Created", a.Created)
}

func checkArtifactPath(path string) error {
	if path == "" {
		return errors.New("path is empty")
	}
	return checkText("path", path, maxText)
}
