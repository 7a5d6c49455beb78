package gitsource

import (
	"context"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/transport"
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
	c, sess, ar, end, err := advertisedCall(ctx, repoURL, auth, opts)
	if err != nil {
		return nil, false, err
	}
	defer end()
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
	repo, err := openFetched(st, headHash)
	if err != nil {
		return nil, false, err
	}
	return c.diffFetched(ctx, ar, st, repo, baseHash, headHash)
}

// openFetched opens what was fetched into st as a repository; go-git opens a storage
// only once it has a HEAD.
func openFetched(st *memory.Storage, head plumbing.Hash) (*git.Repository, error) {
	if err := st.SetReference(plumbing.NewHashReference(plumbing.HEAD, head)); err != nil {
		return nil, err
	}
	return git.Open(st, nil)
}

// diffFetched downloads the trees of base and head into st, whose commits repo already
// reads, and lists the files that differ between them.
func (c *call) diffFetched(ctx context.Context, ar *packp.AdvRefs, st *memory.Storage, repo *git.Repository, base, head plumbing.Hash) ([]string, bool, error) {
	for _, want := range []plumbing.Hash{head, base} {
		if err := c.treesOf(ar, st, want); err != nil {
			return nil, false, err
		}
	}
	return changes.Between(ctx, repo, base, head, changes.DefaultLimits())
}

// advertisedCall opens a call within the read budget, a session, and reads the ref
// advertisement; end closes the session and the call.
func advertisedCall(ctx context.Context, repoURL string, auth *Auth, opts []Option) (*call, transport.UploadPackSession, *packp.AdvRefs, func(), error) {
	c, cancel, err := newCall(ctx, repoURL, auth, defaultTimeout, readBudget, opts)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	sess, done, err := c.session()
	if err != nil {
		cancel()
		return nil, nil, nil, nil, err
	}
	end := func() { done(); cancel() }
	ar, err := c.advertised(sess)
	if err != nil {
		end()
		return nil, nil, nil, nil, err
	}
	return c, sess, ar, end, nil
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

// ChangedFilesFromMergeBase lists the files a pull request changes: between its head and
// the merge base of head and target's tip, as a forge shows them. all (everything
// counts as changed) when there is no merge base within both branches' newest
// changesDepth commits, the server cannot filter, or a limit was passed.
func ChangedFilesFromMergeBase(ctx context.Context, repoURL, target, head string, auth *Auth, opts ...Option) (files []string, all bool, err error) {
	headHash, err := commitHash(head)
	if err != nil {
		return nil, false, err
	}
	if err := ValidateBranch(target); err != nil {
		return nil, false, err
	}
	c, _, ar, end, err := advertisedCall(ctx, repoURL, auth, opts)
	if err != nil {
		return nil, false, err
	}
	defer end()
	tip, ok := ar.References[plumbing.NewBranchReferenceName(target).String()]
	if !ok || !ar.Capabilities.Supports(capability.Filter) {
		return nil, true, nil
	}
	st := memory.NewStorage()
	for _, want := range []plumbing.Hash{headHash, tip} {
		if err := c.commitsOf(ar, st, want); err != nil {
			return nil, false, err
		}
	}
	repo, err := openFetched(st, headHash)
	if err != nil {
		return nil, false, err
	}
	base, found, err := changes.MergeBase(repo, headHash, tip)
	if err != nil || !found {
		return nil, true, nil // histories cut by the depth, or unrelated
	}
	return c.diffFetched(ctx, ar, st, repo, base, headHash)
}

// commitsOf downloads commit's newest changesDepth commits, without trees, into st.
func (c *call) commitsOf(ar *packp.AdvRefs, st *memory.Storage, commit plumbing.Hash) error {
	sess, done, err := c.session()
	if err != nil {
		return err
	}
	defer done()
	if ar, err = c.advertised(sess); err != nil {
		return err
	}
	return c.upload(sess, ar, st, commit, changesDepth, packp.FilterTreeDepth(0), c.budget, "")
}
