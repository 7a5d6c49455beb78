package gitsource

import (
	"context"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/storage/memory"
)

// ReadFile returns the content of filePath at commit. It fetches only that
// commit (depth 1, no tags, no worktree) into memory. A missing file is
// ErrFileNotFound; one larger than maxSize bytes is ErrFileTooLarge, decided
// from the object size before reading content, and when the server supports
// partial clone the blob is not even downloaded.
func ReadFile(ctx context.Context, repoURL, commit, filePath string, maxSize int64, auth *Auth, opts ...Option) ([]byte, error) {
	hash, err := commitHash(commit)
	if err != nil {
		return nil, err
	}
	if err := validatePath(filePath); err != nil {
		return nil, err
	}
	c, cancel, err := newCall(ctx, repoURL, auth, defaultTimeout, opts)
	if err != nil {
		return nil, err
	}
	defer cancel()

	sess, done, err := c.session()
	if err != nil {
		return nil, err
	}
	defer done()
	st := memory.NewStorage()
	limit := packp.FilterBlobLimit(uint64(max(maxSize, 0))+1, packp.BlobLimitPrefixNone)
	if err := c.fetchCommit(sess, st, hash, limit); err != nil {
		return nil, err
	}
	return readBlob(st, hash, filePath, maxSize)
}

func readBlob(st *memory.Storage, commit plumbing.Hash, filePath string, maxSize int64) ([]byte, error) {
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
