package gitsource

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Clone checks out exactly commit of repoURL into dir (created if missing,
// otherwise it must be empty). It fetches only that commit (depth 1 when the
// server allows), points branch (if set) and HEAD at it, and verifies HEAD
// afterwards. On failure dir is emptied again, so a retry can start over.
// The default timeout is 10 minutes. The pack is spilled into dir's .git
// within the budget (1 GiB sent, 4 GiB inflated by default), and at most
// WithMaxFiles files (200,000 by default) are checked out.
func Clone(ctx context.Context, repoURL, branch, commit, dir string, auth *Auth, opts ...Option) (err error) {
	hash, err := commitHash(commit)
	if err != nil {
		return err
	}
	if branch != "" {
		if err := ValidateBranch(branch); err != nil {
			return err
		}
	}
	c, cancel, err := newCall(ctx, repoURL, auth, defaultCloneTimeout, cloneBudget, opts)
	if err != nil {
		return err
	}
	defer cancel()
	if err := ensureEmptyDir(dir); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			emptyDir(dir)
		}
	}()

	repo, err := git.PlainInit(dir, false)
	if err != nil {
		return fmt.Errorf("init repository in %s: %w", dir, err)
	}
	sess, done, err := c.session()
	if err != nil {
		return err
	}
	defer done()
	ar, err := c.advertised(sess)
	if err != nil {
		return err
	}
	if err := c.fetchCommit(sess, ar, repo.Storer, hash, "", c.budget, filepath.Join(dir, ".git")); err != nil {
		return err
	}
	if err := checkFileCount(repo, hash, c.opts.maxFiles); err != nil {
		return err
	}
	if err := pointHead(repo, repoURL, branch, hash); err != nil {
		return err
	}

	wt, err := repo.Worktree()
	if err != nil {
		return fmt.Errorf("open worktree: %w", err)
	}
	if err := wt.Reset(&git.ResetOptions{Commit: hash, Mode: git.HardReset}); err != nil {
		return fmt.Errorf("check out %s: %w", hash, err)
	}
	head, err := repo.Head()
	if err != nil {
		return fmt.Errorf("read HEAD after checkout: %w", err)
	}
	if head.Hash() != hash {
		return fmt.Errorf("checkout ended at %s, want %s", head.Hash(), hash)
	}
	return nil
}

// defaultMaxFiles bounds the files a clone checks out.
const defaultMaxFiles = 200_000

// checkFileCount fails before checkout when the commit has more than max files (0: the
// default).
func checkFileCount(repo *git.Repository, hash plumbing.Hash, max int) error {
	if max <= 0 {
		max = defaultMaxFiles
	}
	cm, err := repo.CommitObject(hash)
	if err != nil {
		return fmt.Errorf("read commit %s: %w", hash, err)
	}
	tree, err := cm.Tree()
	if err != nil {
		return fmt.Errorf("read tree of %s: %w", hash, err)
	}
	n := 0
	walker := object.NewTreeWalker(tree, true, nil)
	defer walker.Close()
	for {
		_, entry, err := walker.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("walk tree of %s: %w", hash, err)
		}
		if entry.Mode.IsFile() {
			if n++; n > max {
				return fmt.Errorf("%w: commit %s has more than %d files", ErrTooLarge, hash, max)
			}
		}
	}
}

// pointHead records origin and makes HEAD the branch at hash (detached when
// branch is empty), so the job's own git commands see a normal clone.
func pointHead(repo *git.Repository, repoURL, branch string, hash plumbing.Hash) error {
	fetch := config.RefSpec("+refs/heads/*:refs/remotes/origin/*")
	if branch != "" {
		fetch = config.RefSpec(fmt.Sprintf("+refs/heads/%s:refs/remotes/origin/%s", branch, branch))
	}
	_, err := repo.CreateRemote(&config.RemoteConfig{
		Name:  git.DefaultRemoteName,
		URLs:  []string{repoURL},
		Fetch: []config.RefSpec{fetch},
	})
	if err != nil {
		return fmt.Errorf("record remote: %w", err)
	}
	if branch == "" {
		return repo.Storer.SetReference(plumbing.NewHashReference(plumbing.HEAD, hash))
	}
	name := plumbing.NewBranchReferenceName(branch)
	refs := []*plumbing.Reference{
		plumbing.NewHashReference(name, hash),
		plumbing.NewHashReference(plumbing.NewRemoteReferenceName(git.DefaultRemoteName, branch), hash),
		plumbing.NewSymbolicReference(plumbing.HEAD, name),
	}
	for _, r := range refs {
		if err := repo.Storer.SetReference(r); err != nil {
			return fmt.Errorf("set %s: %w", r.Name(), err)
		}
	}
	return repo.CreateBranch(&config.Branch{Name: branch, Remote: git.DefaultRemoteName, Merge: name})
}

// emptyDir removes what a failed clone left in dir (which was empty).
func emptyDir(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != lostFound {
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

const lostFound = "lost+found"

// ensureEmptyDir creates dir or checks it is empty. lost+found is tolerated:
// the clone target may be the root of a freshly formatted volume.
func ensureEmptyDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create clone directory: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read clone directory: %w", err)
	}
	for _, e := range entries {
		if e.Name() != lostFound {
			return fmt.Errorf("clone directory %s is not empty", dir)
		}
	}
	return nil
}
