// Package gittest provides real git servers on loopback and bare repositories
// built with the git CLI, for tests of code that talks to git remotes.
package gittest

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/flow-ci/flow-ci/internal/gitserver"
)

// DefaultBranch is the branch NewRepo commits to.
const DefaultBranch = "main"

// Repo is a bare repository created with the real git CLI.
type Repo struct {
	Root string // directory a server exports; holds the bare repository
	Name string // directory name under Root, e.g. "repo.git"
	Path string // Root/Name
}

// NewRepo creates a bare repository in a fresh temporary root. When files is
// non-nil it also commits them to DefaultBranch; nil leaves the repo empty.
func NewRepo(t testing.TB, files map[string]string) *Repo {
	t.Helper()
	return NewRepoIn(t, t.TempDir(), "repo.git", files)
}

// NewRepoIn is NewRepo for a given root and name, so one server can export
// several repositories.
func NewRepoIn(t testing.TB, root, name string, files map[string]string) *Repo {
	t.Helper()
	r := &Repo{Root: root, Name: name, Path: filepath.Join(root, name)}
	Git(t, "", "init", "--quiet", "--bare", "--initial-branch="+DefaultBranch, r.Path)
	if files != nil {
		r.Commit(t, files)
	}
	return r
}

// Commit adds a commit on DefaultBranch that adds or replaces files, and
// returns its SHA.
func (r *Repo) Commit(t testing.TB, files map[string]string) string {
	t.Helper()
	return r.CommitOn(t, DefaultBranch, files)
}

// CommitOn adds a commit on branch (created if missing) that adds or replaces
// files, and returns its SHA. It uses git fast-import, so commits with tens of
// thousands of files stay cheap.
func (r *Repo) CommitOn(t testing.TB, branch string, files map[string]string) string {
	t.Helper()
	ref := "refs/heads/" + branch
	parent := strings.TrimSpace(gitOutput(t, r.Path, nil, true, "rev-parse", "--verify", "--quiet", ref))

	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)

	var b bytes.Buffer
	msg := fmt.Sprintf("commit %d files", len(files))
	fmt.Fprintf(&b, "commit %s\ncommitter Flow CI <ci@example.com> 1700000000 +0000\n", ref)
	fmt.Fprintf(&b, "data %d\n%s\n", len(msg), msg)
	if parent != "" {
		fmt.Fprintf(&b, "from %s\n", parent)
	}
	for _, p := range paths {
		fmt.Fprintf(&b, "M 100644 inline %s\ndata %d\n%s\n", p, len(files[p]), files[p])
	}
	b.WriteString("done\n")

	gitOutput(t, r.Path, &b, false, "fast-import", "--quiet", "--done")
	return r.RevParse(t, ref)
}

// RevParse returns the SHA that `git rev-parse rev` gives in the repository.
func (r *Repo) RevParse(t testing.TB, rev string) string {
	t.Helper()
	return strings.TrimSpace(Git(t, r.Path, "rev-parse", "--verify", rev+"^{commit}"))
}

// SetConfig sets a git config key in the bare repository, e.g.
// uploadpack.allowAnySHA1InWant.
func (r *Repo) SetConfig(t testing.TB, key, value string) {
	t.Helper()
	Git(t, r.Path, "config", key, value)
}

// Git runs the git CLI in dir (if not empty), isolated from user and system
// configuration, and returns its stdout. It fails the test on error.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	return gitOutput(t, dir, nil, false, args...)
}

func gitOutput(t testing.TB, dir string, stdin *bytes.Buffer, allowFail bool, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = Env()
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil && !allowFail {
		t.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// Env is the environment for git CLI processes (gitserver.Env).
func Env() []string { return gitserver.Env() }
