package gitsource

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/storage/memory"
)

// ResolveCommit returns the commit to build. A non-empty revision is
// validated and returned lowercased without contacting the server (ReadFile
// and Clone fetch it). Otherwise it lists the remote's refs, like
// `git ls-remote`, and returns the tip of refs/heads/<branch>: a missing
// branch is ErrBranchNotFound, a repository without refs ErrEmptyRepository.
func ResolveCommit(ctx context.Context, repoURL, branch, revision string, auth *Auth, opts ...Option) (string, error) {
	if revision != "" {
		if err := ValidateURL(repoURL, opts...); err != nil {
			return "", err
		}
		return ValidateRevision(revision)
	}
	if err := ValidateBranch(branch); err != nil {
		return "", err
	}
	c, cancel, err := newCall(ctx, repoURL, auth, defaultTimeout, resolveBudget, opts)
	if err != nil {
		return "", err
	}
	defer cancel()

	sess, done, err := c.session()
	if err != nil {
		return "", err
	}
	defer done()
	ar, err := c.advertised(sess)
	if err != nil {
		return "", err
	}
	h, ok := ar.References[plumbing.NewBranchReferenceName(branch).String()]
	if !ok {
		return "", fmt.Errorf("%w: no branch %q in %s", ErrBranchNotFound, branch, safeURL(repoURL))
	}
	return h.String(), nil
}

// onBranchDepth is how far back OnBranch looks from the branch tip.
const onBranchDepth = 1000

// OnBranch reports whether commit is the tip of branch or one of its newest 1000
// commits. It needs a server that can filter (it fetches commits without trees); from
// one that cannot it reports false unless commit is the tip, since checking would mean
// downloading the history's files.
func OnBranch(ctx context.Context, repoURL, branch, commit string, auth *Auth, opts ...Option) (bool, error) {
	hash, err := commitHash(commit)
	if err != nil {
		return false, err
	}
	if err := ValidateBranch(branch); err != nil {
		return false, err
	}
	c, cancel, err := newCall(ctx, repoURL, auth, defaultTimeout, readBudget, opts)
	if err != nil {
		return false, err
	}
	defer cancel()
	sess, done, err := c.session()
	if err != nil {
		return false, err
	}
	defer done()
	ar, err := c.advertised(sess)
	if err != nil {
		return false, err
	}
	tip, ok := ar.References[plumbing.NewBranchReferenceName(branch).String()]
	switch {
	case !ok:
		return false, nil
	case tip == hash:
		return true, nil
	case !ar.Capabilities.Supports(capability.Filter):
		return false, nil
	}
	st := memory.NewStorage()
	if err := c.upload(sess, ar, st, tip, onBranchDepth, packp.FilterTreeDepth(0), c.budget, ""); err != nil {
		return false, err
	}
	_, err = st.EncodedObject(plumbing.CommitObject, hash)
	return err == nil, nil
}

// ListBranches lists the remote's branches and their heads with one ref advertisement,
// like `git ls-remote --heads`, within the same budget as ResolveCommit. A repository
// without branches gives an empty map.
func ListBranches(ctx context.Context, repoURL string, auth *Auth, opts ...Option) (map[string]string, error) {
	refs, err := ListRefs(ctx, repoURL, auth, opts...)
	return refs.Branches, err
}

// Refs are what one ref advertisement says about a repository's branches and pull
// requests.
type Refs struct {
	// Branches maps branch names to their heads.
	Branches map[string]string
	// Pulls maps pull request numbers to their heads: refs/pull/N/head (GitHub,
	// Gitea) and refs/merge-requests/N/head (GitLab).
	Pulls map[int]string
	// Default is the branch the remote's HEAD names (its default branch), "" when the
	// server does not say (the symref capability).
	Default string
}

// ListRefs lists the remote's branches and pull request heads with one ref
// advertisement, within the same budget as ResolveCommit.
func ListRefs(ctx context.Context, repoURL string, auth *Auth, opts ...Option) (Refs, error) {
	out := Refs{Branches: map[string]string{}, Pulls: map[int]string{}}
	c, cancel, err := newCall(ctx, repoURL, auth, defaultTimeout, resolveBudget, opts)
	if err != nil {
		return out, err
	}
	defer cancel()
	sess, done, err := c.session()
	if err != nil {
		return out, err
	}
	defer done()
	ar, err := c.advertised(sess)
	if err != nil {
		if errors.Is(err, ErrEmptyRepository) {
			return out, nil
		}
		return out, err
	}
	for _, v := range ar.Capabilities.Get(capability.SymRef) {
		if b, ok := strings.CutPrefix(v, "HEAD:refs/heads/"); ok && ValidateBranch(b) == nil {
			out.Default = b
		}
	}
	for name, h := range ar.References {
		if branch, ok := strings.CutPrefix(name, "refs/heads/"); ok && ValidateBranch(branch) == nil {
			out.Branches[branch] = h.String()
		} else if n, ok := pullNumber(name); ok {
			out.Pulls[n] = h.String()
		}
	}
	return out, nil
}

// pullNumber reads N from refs/pull/N/head or refs/merge-requests/N/head.
func pullNumber(ref string) (int, bool) {
	rest, ok := strings.CutPrefix(ref, "refs/pull/")
	if !ok {
		rest, ok = strings.CutPrefix(ref, "refs/merge-requests/")
	}
	num, ok2 := strings.CutSuffix(rest, "/head")
	if !ok || !ok2 || num == "" || len(num) > 9 || strings.TrimLeft(num, "0123456789") != "" || num[0] == '0' {
		return 0, false
	}
	n, err := strconv.Atoi(num)
	return n, err == nil
}
