package changes

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Limits bounds the work a hostile repository can cause. Past a limit the answer
// is all=true (every file counts as changed): the pipeline runs, which is never
// wrong, only less selective. A zero or negative field takes its default.
type Limits struct {
	// MaxFiles is the most changed files collected before giving up.
	MaxFiles int
	// MaxCommitsWalked is the most commits read to check that base is an
	// ancestor of head.
	MaxCommitsWalked int
	// MaxTreesRead is the most tree objects read while diffing. It is separate
	// from MaxFiles because trees can be nested and shared so that a diff reads
	// exponentially many of them without ever reaching a file.
	MaxTreesRead int
	// MaxEntriesRead bounds the tree entries decoded, so a few very wide trees cost
	// no more than many narrow ones; MaxPathBytes bounds the bytes of the paths listed.
	MaxEntriesRead int
	MaxPathBytes   int
}

// DefaultLimits returns limits far above what a normal push or pull request
// needs, yet bounded so a crafted history cannot make one decision unbounded.
func DefaultLimits() Limits {
	return Limits{MaxFiles: 10000, MaxCommitsWalked: 100000, MaxTreesRead: 100000, MaxEntriesRead: 2000000, MaxPathBytes: 4 << 20}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxFiles <= 0 {
		l.MaxFiles = d.MaxFiles
	}
	if l.MaxCommitsWalked <= 0 {
		l.MaxCommitsWalked = d.MaxCommitsWalked
	}
	if l.MaxTreesRead <= 0 {
		l.MaxTreesRead = d.MaxTreesRead
	}
	if l.MaxEntriesRead <= 0 {
		l.MaxEntriesRead = d.MaxEntriesRead
	}
	if l.MaxPathBytes <= 0 {
		l.MaxPathBytes = d.MaxPathBytes
	}
	return l
}

// Between returns the sorted, deduplicated paths that differ between the trees
// of base and head: added, modified (content or mode) and deleted files. Renames
// are not detected, so a rename lists both the old and the new path.
//
// It returns all=true and no files when there is nothing trustworthy to compare
// with: base is the zero hash (a new branch), base is not a commit in repo (not
// fetched, or garbage collected), base is not an ancestor of head (a force push
// past it, so a tree diff would miss commits that were never built), a limit
// was exceeded, or ctx ended while it read trees. A missing or unreadable head is
// an error.
func Between(ctx context.Context, repo *git.Repository, base, head plumbing.Hash, limits Limits) (files []string, all bool, err error) {
	limits = limits.withDefaults()
	headCommit, err := repo.CommitObject(head)
	if err != nil {
		return nil, false, fmt.Errorf("reading head commit %s: %w", head, err)
	}
	if base.IsZero() {
		return nil, true, nil
	}
	baseCommit, err := repo.CommitObject(base)
	if errors.Is(err, plumbing.ErrObjectNotFound) || errors.Is(err, object.ErrUnsupportedObject) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading base commit %s: %w", base, err)
	}
	ancestor, err := isAncestor(repo, base, head, limits.MaxCommitsWalked)
	if err != nil {
		return nil, false, err
	}
	if !ancestor {
		return nil, true, nil
	}
	d := &differ{ctx: ctx, repo: repo, limits: limits, seen: map[string]struct{}{}}
	err = d.diff("", baseCommit.TreeHash, headCommit.TreeHash)
	if errors.Is(err, errLimit) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	sort.Strings(d.files)
	return d.files, false, nil
}

// isAncestor reports whether base is head or reachable from head through
// parents, reading at most max commits; past that it answers false so the
// caller treats everything as changed. Parents missing from the repository (a
// shallow clone) are skipped: ancestry through them cannot be proven.
func isAncestor(repo *git.Repository, base, head plumbing.Hash, max int) (bool, error) {
	queue := []plumbing.Hash{head}
	seen := map[plumbing.Hash]struct{}{head: {}}
	for walked := 0; len(queue) > 0; walked++ {
		h := queue[0]
		queue = queue[1:]
		if h == base {
			return true, nil
		}
		if walked >= max {
			return false, nil
		}
		c, err := repo.CommitObject(h)
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("walking history of %s: reading %s: %w", head, h, err)
		}
		for _, p := range c.ParentHashes {
			if _, ok := seen[p]; !ok {
				seen[p] = struct{}{}
				queue = append(queue, p)
			}
		}
	}
	return false, nil
}

// MergeBase returns a best common ancestor of a and b, as `git merge-base`
// does; ok is false when the histories share no commit. With several best
// ancestors (criss-cross merges) any of them is returned: the one with the
// smallest hash, so the answer is stable. For a pull request the changed files
// are Between(repo, base, head, limits) with base = MergeBase(head, target).
//
// go-git's merge base walks both histories without a bound, so its work grows
// with the size of the repository; Limits do not apply to it.
func MergeBase(repo *git.Repository, a, b plumbing.Hash) (plumbing.Hash, bool, error) {
	ca, err := repo.CommitObject(a)
	if err != nil {
		return plumbing.ZeroHash, false, fmt.Errorf("reading commit %s: %w", a, err)
	}
	cb, err := repo.CommitObject(b)
	if err != nil {
		return plumbing.ZeroHash, false, fmt.Errorf("reading commit %s: %w", b, err)
	}
	bases, err := ca.MergeBase(cb)
	if err != nil {
		return plumbing.ZeroHash, false, fmt.Errorf("merge base of %s and %s: %w", a, b, err)
	}
	if len(bases) == 0 {
		return plumbing.ZeroHash, false, nil
	}
	best := bases[0].Hash
	for _, c := range bases[1:] {
		if c.Hash.String() < best.String() {
			best = c.Hash
		}
	}
	return best, true, nil
}
