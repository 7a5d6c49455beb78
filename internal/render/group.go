package render

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strings"
)

// Labels the controller sets on a PipelineRun, so that runs of one repository and branch
// can be listed together for concurrency policies and history limits.
const (
	// LabelRepo is a hash of the normalised repository URL.
	LabelRepo = "flowci.dev/repo"
	// LabelBranch is the branch as a label value, hashed when it does not fit.
	LabelBranch = "flowci.dev/branch"
)

// GroupLabels returns the repo and branch labels of a run. URLs that name the same
// repository (scheme and host case, a trailing .git or slash, the ssh user, scp-like or
// ssh:// form) get the same hash.
func GroupLabels(repoURL, branch string) map[string]string {
	sum := sha256.Sum256([]byte(NormalizeRepoURL(repoURL)))
	return map[string]string{
		LabelRepo:   hex.EncodeToString(sum[:])[:20],
		LabelBranch: labelValue(branch),
	}
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
