package gitsource

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"
)

// ReadFile returns the content of filePath at commit, reading as little as the server
// allows, within the call's budget (Budget: 32 MiB from the network, 16 MiB per pack,
// inflated):
//
//   - A server that can filter (partial clone: GitHub, GitLab, Gitea, git with
//     uploadpack.allowFilter) sends the commit's trees without blobs, then the one
//     blob; one larger than maxSize bytes is refused from its header, unread.
//   - If it will not send a blob by id, the commit comes with blobs up to maxSize.
//   - A server that cannot filter sends the whole commit. When that is over the budget
//     the read fails with ErrTooLarge, which names the server setting that helps.
//
// A missing file is ErrFileNotFound; one larger than maxSize bytes is ErrFileTooLarge.
func ReadFile(ctx context.Context, repoURL, commit, filePath string, maxSize int64, auth *Auth, opts ...Option) ([]byte, error) {
	hash, err := commitHash(commit)
	if err != nil {
		return nil, err
	}
	if err := validatePath(filePath); err != nil {
		return nil, err
	}
	c, cancel, err := newCall(ctx, repoURL, auth, defaultTimeout, readBudget, opts)
	if err != nil {
		return nil, err
	}
	defer cancel()

	sess, done, err := c.session()
	if err != nil {
		return nil, err
	}
	defer done()
	ar, err := c.advertised(sess)
	if err != nil {
		return nil, err
	}
	st := memory.NewStorage()
	if !ar.Capabilities.Supports("filter") {
		if err := c.fetch(sess, ar, st, hash, ""); err != nil {
			if errors.Is(err, ErrTooLarge) {
				return nil, fmt.Errorf("%w; the server does not filter objects (partial clone), so ReadFile received the whole commit: "+
					"enable it on the server (git: uploadpack.allowFilter=true)", err)
			}
			return nil, err
		}
		return readBlob(st, hash, filePath, maxSize)
	}
	if err := c.fetch(sess, ar, st, hash, packp.FilterBlobNone()); err != nil {
		return nil, err
	}
	entry, err := findFile(st, hash, filePath)
	if err != nil {
		return nil, err
	}
	blobBudget := c.budget
	blobBudget.Pack, blobBudget.Inflated = min(blobBudget.Pack, maxSize+1<<10), maxSize
	err = c.fetchObject(sess, ar, st, entry.Hash, plumbing.BlobObject, blobBudget)
	switch {
	case errors.Is(err, ErrTooLarge):
		return nil, fmt.Errorf("%w: %s is larger than %d bytes at commit %s", ErrFileTooLarge, filePath, maxSize, hash)
	case errors.Is(err, ErrRevisionNotServed):
		// The server filters but serves no blob by id: blobs up to the limit instead.
		limit := packp.FilterBlobLimit(uint64(max(maxSize, 0))+1, packp.BlobLimitPrefixNone)
		if err := c.fetch(sess, ar, st, hash, limit); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	}
	return readBlob(st, hash, filePath, maxSize)
}

// fetch downloads commit and its trees (and blobs, unless filter leaves them out) into
// st, within the call's budget.
func (c *call) fetch(sess transport.UploadPackSession, ar *packp.AdvRefs, st *memory.Storage, commit plumbing.Hash, filter packp.Filter) error {
	return c.fetchCommit(sess, ar, st, commit, filter, c.budget, "")
}

// fetchObject downloads one object by id into st. Over ssh each upload-pack answers
// one request, so the object comes through a session of its own.
func (c *call) fetchObject(sess transport.UploadPackSession, ar *packp.AdvRefs, st *memory.Storage, id plumbing.Hash, t plumbing.ObjectType, b Budget) error {
	if c.ep.Protocol == "ssh" {
		s2, done, err := c.session()
		if err != nil {
			return err
		}
		defer done()
		if ar, err = c.advertised(s2); err != nil {
			return err
		}
		sess = s2
	}
	if err := c.upload(sess, ar, st, id, 1, "", b, ""); err != nil {
		return err
	}
	if _, err := st.EncodedObject(t, id); err != nil {
		return fmt.Errorf("fetch %s: %w: %s %s missing from the server's pack", safeURL(c.repoURL), ErrRevisionNotServed, t, id)
	}
	return nil
}

func findFile(st *memory.Storage, commit plumbing.Hash, filePath string) (*object.TreeEntry, error) {
	cm, err := object.GetCommit(st, commit)
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", commit, err)
	}
	tree, err := cm.Tree()
	if err != nil {
		return nil, fmt.Errorf("read tree of commit %s: %w", commit, err)
	}
	entry, err := tree.FindEntry(filePath)
	if err != nil {
		return nil, fmt.Errorf("%w: %s does not exist at commit %s", ErrFileNotFound, filePath, commit)
	}
	if entry.Mode != filemode.Regular && entry.Mode != filemode.Executable {
		return nil, fmt.Errorf("%w: %s is not a regular file at commit %s", ErrFileNotFound, filePath, commit)
	}
	return entry, nil
}

func readBlob(st *memory.Storage, commit plumbing.Hash, filePath string, maxSize int64) ([]byte, error) {
	entry, err := findFile(st, commit, filePath)
	if err != nil {
		return nil, err
	}
	obj, err := st.EncodedObject(plumbing.BlobObject, entry.Hash)
	if err == plumbing.ErrObjectNotFound {
		// Left out by the blob:limit filter, so it is over the limit.
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrFileTooLarge, filePath, maxSize)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filePath, err)
	}
	if obj.Size() > maxSize {
		return nil, fmt.Errorf("%w: %s is %d bytes, more than the %d byte limit", ErrFileTooLarge, filePath, obj.Size(), maxSize)
	}
	r, err := obj.Reader()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filePath, err)
	}
	defer r.Close()
	return io.ReadAll(io.LimitReader(r, maxSize))
}

// commitHash validates a commit id for fetching. go-git v5 speaks SHA-1
// object names only.
func commitHash(commit string) (plumbing.Hash, error) {
	commit, err := ValidateRevision(commit)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if len(commit) != 40 {
		return plumbing.ZeroHash, fmt.Errorf("%w: sha-256 repositories are not supported yet", ErrInvalidRevision)
	}
	return plumbing.NewHash(commit), nil
}
