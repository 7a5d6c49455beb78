package gitsource

import (
	"context"
	"fmt"

	"github.com/go-git/go-git/v5/plumbing"
)

// ResolveCommit returns the commit to build. A non-empty revision is
// validated and returned lowercased without contacting the server (ReadFile
// and Clone fetch it). Otherwise it lists the remote's refs, like
// `git ls-remote`, and returns the tip of refs/heads/<branch>: a missing
// branch is ErrBranchNotFound, a repository without refs ErrEmptyRepository.
func ResolveCommit(ctx context.Context, repoURL, branch, revision string, auth *Auth, opts ...Option) (string, error) {
	if revision != "" {
		if err := ValidateURL(repoURL); err != nil {
			return "", err
		}
		return ValidateRevision(revision)
	}
	if err := ValidateBranch(branch); err != nil {
		return "", err
	}
	c, cancel, err := newCall(ctx, repoURL, auth, defaultTimeout, opts)
	if err != nil {
		return "", err
	}
	defer cancel()

	sess, done, err := c.session()
	if err != nil {
		return "", err
	}
	defer done()
	ar, err := sess.AdvertisedReferencesContext(c.ctx)
	if err != nil {
		return "", c.fail("list refs of", err)
	}
	h, ok := ar.References[plumbing.NewBranchReferenceName(branch).String()]
	if !ok {
		return "", fmt.Errorf("%w: no branch %q in %s", ErrBranchNotFound, branch, safeURL(repoURL))
	}
	return h.String(), nil
}
