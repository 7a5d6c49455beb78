package main

import (
	"errors"
	"net/url"
	"os/exec"
	"strings"
)

// workingCopyInfo is what the CLI reads of the git working copy around a directory.
type workingCopyInfo struct {
	root, head, branch string
	// remote is origin's URL without credentials.
	remote string
	// remoteHadCredentials: origin's URL carried a user and password or a token, which
	// remote leaves out: they must never reach the API server or its audit log.
	remoteHadCredentials bool
	// pushed: HEAD is the remote-tracking head of its branch (origin/<branch>).
	pushed bool
}

func gitOut(dir string, args ...string) (string, error) {
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).Output()
	return strings.TrimSpace(string(out)), err
}

// workingCopy reads the checkout that holds dir: its root, HEAD, branch (empty when
// detached), origin's URL, and whether HEAD is pushed, as far as the last fetch knows.
func workingCopy(dir string) (workingCopyInfo, error) {
	var wc workingCopyInfo
	var err error
	if wc.root, err = gitOut(dir, "rev-parse", "--show-toplevel"); err != nil {
		return wc, errors.New("not in a git working copy")
	}
	if wc.head, err = gitOut(dir, "rev-parse", "--verify", "HEAD"); err != nil {
		return wc, errors.New("the working copy has no commit yet")
	}
	if b, err := gitOut(dir, "symbolic-ref", "--quiet", "--short", "HEAD"); err == nil {
		wc.branch = b
	}
	origin, _ := gitOut(dir, "remote", "get-url", "origin")
	wc.remote, wc.remoteHadCredentials = withoutCredentials(origin)
	if wc.branch != "" {
		tracked, err := gitOut(dir, "rev-parse", "--verify", "--quiet", "refs/remotes/origin/"+wc.branch)
		wc.pushed = err == nil && tracked == wc.head
	}
	return wc, nil
}

// withoutCredentials is a remote URL without what would authenticate: the user and
// password (or token) of an http(s) URL, the password of an ssh:// URL. An ssh user
// alone ("git@") is kept: it names an account, not a secret. It reports whether
// anything was removed.
func withoutCredentials(remote string) (string, bool) {
	u, err := url.Parse(remote)
	if err != nil || u.User == nil || !strings.Contains(remote, "://") {
		return remote, false // scp-like user@host:path, or not a URL: nothing secret
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		u.User = nil
	case "ssh":
		if _, hasPassword := u.User.Password(); !hasPassword {
			return remote, false
		}
		u.User = url.User(u.User.Username())
	default:
		u.User = nil
	}
	return u.String(), true
}
