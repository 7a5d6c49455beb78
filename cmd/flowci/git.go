package main

import (
	"errors"
	"os/exec"
	"strings"
)

// workingCopyInfo is what the CLI reads of the git working copy around a directory.
type workingCopyInfo struct {
	root, head, branch, remote string
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
	wc.remote, _ = gitOut(dir, "remote", "get-url", "origin")
	if wc.branch != "" {
		tracked, err := gitOut(dir, "rev-parse", "--verify", "--quiet", "refs/remotes/origin/"+wc.branch)
		wc.pushed = err == nil && tracked == wc.head
	}
	return wc, nil
}

func shortSHA(s string) string {
	if len(s) > 7 {
		return s[:7]
	}
	return s
}
