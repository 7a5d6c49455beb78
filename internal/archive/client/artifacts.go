package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/flow-ci/flow-ci/internal/archive/api"
)

// Artifacts lists the files the steps of the run kept (uid "": the newest run of
// that name).
func (c *Client) Artifacts(ctx context.Context, ns, name, uid string) (api.ArtifactList, error) {
	var out api.ArtifactList
	err := c.getJSON(ctx, uidQuery(uid), &out, ns, "runs", name, "artifacts")
	return out, err
}

// ErrChecksum: a download's bytes are not the ones the archive stored.
var ErrChecksum = errors.New("the file's sha256 is not the one the archive stored")

// Artifact writes the file path the run kept to w, and checks its length and sha256
// against what the archive announced; on a mismatch it returns ErrChecksum after
// writing what arrived, so the caller must discard w's contents.
func (c *Client) Artifact(ctx context.Context, ns, name, uid, path string, w io.Writer) (sum string, size int64, err error) {
	if err := api.CheckArtifactPath(path); err != nil {
		return "", 0, err
	}
	resp, err := c.do(ctx, uidQuery(uid), append([]string{ns, "runs", name, "artifacts"}, strings.Split(path, "/")...)...)
	if err != nil {
		return "", 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	want := strings.ToLower(resp.Header.Get(api.HeaderSHA256))
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(resp.Body, max(resp.ContentLength, 0)+1))
	got := hex.EncodeToString(h.Sum(nil))
	switch {
	case err != nil:
		return got, n, fmt.Errorf("downloading %s after %d bytes: %w", path, n, err)
	case resp.ContentLength >= 0 && n != resp.ContentLength:
		return got, n, fmt.Errorf("downloading %s: %d of %d bytes: %w", path, n, resp.ContentLength, ErrChecksum)
	case got != want:
		return got, n, fmt.Errorf("downloading %s: sha256 %s, the archive stored %s: %w", path, got, want, ErrChecksum)
	}
	return got, n, nil
}
