package render

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strings"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// GroupKey is a run's concurrency group within its namespace: runs of one repository
// and branch share it. URLs that name the same repository (scheme and host case, a
// trailing .git or slash, the ssh user, the scp-like or ssh:// form) give the same key;
// the transport is part of it, so an http:// run cannot Replace, queue behind or
// delete the history of https:// runs. The operator indexes runs by it
// (v1alpha1.IndexRunGroup).
func GroupKey(repoURL, branch string) string {
	sum := sha256.Sum256([]byte(transport(repoURL) + "\x00" + NormalizeRepoURL(repoURL) + "\x00" + branch))
	return hex.EncodeToString(sum[:])[:32]
}

// RunGroupKey is run's concurrency group: its repository and branch (GroupKey), or for
// a trigger's run of a pull request, its repository and pull request, so that a pull
// request's runs never Replace, queue behind or prune the runs of its target branch.
// The label is the operator's alone (config/policy).
func RunGroupKey(run *v1alpha1.PipelineRun) string {
	if n := run.Labels[v1alpha1.LabelPullRequest]; n != "" {
		return GroupKey(run.Spec.RepoURL, "\x00pull/"+n) // no branch name holds a NUL
	}
	return GroupKey(run.Spec.RepoURL, run.Spec.Branch)
}

// transport is the URL's scheme, with the scp-like form as ssh.
func transport(repoURL string) string {
	scheme, _, ok := strings.Cut(strings.TrimSpace(repoURL), "://")
	if !ok {
		return "ssh"
	}
	return strings.ToLower(scheme)
}

// NormalizeRepoURL reduces a repository URL to host/path, lowercasing the host.
func NormalizeRepoURL(repoURL string) string {
	s := strings.TrimSpace(repoURL)
	if !strings.Contains(s, "://") {
		// scp-like user@host:path is ssh://user@host/path.
		if at, colon := strings.Index(s, "@"), strings.Index(s, ":"); at >= 0 && colon > at {
			s = "ssh://" + s[:colon] + "/" + strings.TrimPrefix(s[colon+1:], "/")
		}
	}
	host, path := s, ""
	if u, err := url.Parse(s); err == nil && u.Host != "" {
		host, path = strings.ToLower(u.Hostname()), u.Path
		if p := u.Port(); p != "" && p != "22" && p != "443" && p != "80" {
			host += ":" + p
		}
	}
	path = strings.TrimSuffix(strings.TrimSuffix(path, "/"), ".git")
	return host + path
}
