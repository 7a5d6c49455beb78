package gitsource

import (
	"context"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/flow-ci/flow-ci/internal/changes"
)

// changesDepth is how far back from head ChangedFiles looks for base: the commits
// between two builds of a branch. Past it, everything counts as changed.
const changesDepth = 1000

// ChangedFiles lists the files that differ between the trees of base and head, for path
// filters: fetched with go-git, no forge API. all reports that everything must count as
// changed, and no list is given, when:
//   - base is empty (a first build, a run by hand), or is not among head's newest
//     changesDepth commits (a force push past it, or a long way behind);
//   - the server cannot filter objects (partial clone), since finding out would mean
//     downloading the files of the history;
//   - more files changed than changes.DefaultLimits allows.
//
// It downloads head's newest commits without trees, then the trees of base and head
// without blobs, all within the read budget, so a file's size never matters.
func ChangedFiles(ctx context.Context, repoURL, base, head string, auth *Auth, opts ...Option) (files []string, all bool, err error) {
	headHash, err := commitHash(head)
	if err != nil {
		return nil, false, err
	}
	if base == "" || base == head {
		return nil, base == "", nil
	}
	baseHash, err := commitHash(base)
	if err != nil {
		return nil, false, err
	}
	c, cancel, err := newCall(ctx, repoURL, auth, defaultTimeout, readBudget, opts)
	if err != nil {
		return nil, false, err
	}
	defer cancel()
	sess, done, err := c.session()
	if err != nil {
		return nil, false, err
	}
	defer done()
	ar, err := c.advertised(sess)
	if err != nil {
		return nil, false, err
	}
	if !ar.Capabilities.Supports(capability.Filter) {
		return nil, true, nil
	}
	st := memory.NewStorage()
	if err := c.upload(sess, ar, st, headHash, changesDepth, packp.FilterTreeDepth(0), c.budget, ""); err != nil {
		return nil, false, err
	}
	if _, err := st.EncodedObject(plumbing.CommitObject, baseHash); err != nil {
		return nil, true, nil // not within reach of head: a force push, or too old
	}
	for _, want := range []plumbing.Hash{headHash, baseHash} {
		if err := c.treesOf(ar, st, want); err != nil {
			return nil, false, err
		}
	}
	// go-git opens a storage only once it has a HEAD.
	if err := st.SetReference(plumbing.NewHashReference(plumbing.HEAD, headHash)); err != nil {
		return nil, false, err
	}
	repo, err := git.Open(st, nil)
	if err != nil {
		return nil, false, err
	}
	return changes.Between(ctx, repo, baseHash, headHash, changes.DefaultLimits())
}

// treesOf downloads commit's trees, without blobs, into st. Over ssh each upload-pack
// answers one request, so each comes through a session of its own.
func (c *call) treesOf(ar *packp.AdvRefs, st *memory.Storage, commit plumbing.Hash) error {
	sess, done, err := c.session()
	if err != nil {
		return err
	}
	defer done()
	if ar, err = c.advertised(sess); err != nil {
		return err
	}
	return c.fetchCommit(sess, ar, st, commit, packp.FilterBlobNone(), c.budget, "")
}
