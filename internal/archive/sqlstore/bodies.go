package sqlstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"time"
)

// Artifacts and caches are written blob first, row after: a row only ever names a
// complete blob. A blob whose row was not written (the write failed, or the archive
// stopped between the two) names no row; when the write fails the store deletes it,
// and what a crash leaves stays until the prefix it is under goes (a run's artifacts
// with the run; a namespace's caches never, as nothing lists blobs yet).

// storeBody streams body, exactly size bytes, into the blob key and returns the
// sha256 of what it stored, in hex.
func (s *store) storeBody(ctx context.Context, key string, body io.Reader, size int64) (string, error) {
	h := sha256.New()
	// What PutStream reads past size to find the body's end is hashed too, but then
	// PutStream fails and the sum is not used.
	if err := s.blobs.PutStream(ctx, key, io.TeeReader(body, h), size); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// cleanupTimeout bounds deleting a blob after the request that wrote it failed.
const cleanupTimeout = 30 * time.Second

// deleteBlob deletes key, best effort: even when ctx is done (a write that failed
// because its request went away), for at most cleanupTimeout. Keys passed here are
// of fixed length (a prefix of the namespace's and the run's, and an ID), so the
// prefix names that one blob.
func (s *store) deleteBlob(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	return s.blobs.DeletePrefix(ctx, key)
}

// newID is 128 random bits in hex: the names of artifact blobs and cache entries,
// which nothing a user writes reaches.
func newID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("new id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// idLen is the length of what newID returns.
const idLen = 32

// artifactPrefix holds a run's artifacts in a namespace, and cachePrefix a
// namespace's caches. Log chunks are under "<namespace>/": a namespace, a DNS label,
// never starts with "_", so no namespace's logs share these prefixes, and deleting a
// run's logs (runPrefix) never reaches them.
func artifactPrefix(ns, uid string) string { return "_artifacts/" + ns + "/" + uid + "/" }

func artifactKey(ns, uid, blobID string) string { return artifactPrefix(ns, uid) + blobID }

func cacheKey(ns, id string) string { return "_caches/" + ns + "/" + id }
