package changes

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

// fixture is a repository in a temporary directory built with the git binary.
type fixture struct {
	t   *testing.T
	dir string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir()}
	f.git("init", "-q", "-b", "main")
	return f
}

// git runs git in the fixture with no user or system config, so the host's
// settings (signing, hooks, default branch) cannot change the history.
func (f *fixture) git(args ...string) string {
	f.t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
	cmd.Dir = f.dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_DATE=2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2024-01-01T00:00:00Z")
	out, err := cmd.CombinedOutput()
	if err != nil {
		f.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// write creates or overwrites files (path, content pairs) and stages them.
func (f *fixture) write(pairs ...string) {
	f.t.Helper()
	for i := 0; i < len(pairs); i += 2 {
		p := filepath.Join(f.dir, pairs[i])
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(pairs[i+1]), 0o644); err != nil {
			f.t.Fatal(err)
		}
		f.git("add", pairs[i])
	}
}

// commit commits what is staged (possibly nothing) and returns the new head.
func (f *fixture) commit(msg string) plumbing.Hash {
	f.t.Helper()
	f.git("commit", "-q", "--allow-empty", "-m", msg)
	return plumbing.NewHash(f.git("rev-parse", "HEAD"))
}

func (f *fixture) open() *git.Repository {
	f.t.Helper()
	repo, err := git.PlainOpen(f.dir)
	if err != nil {
		f.t.Fatal(err)
	}
	return repo
}

// scenario builds a repository and names the base and head to compare.
type scenario func(f *fixture) (base, head plumbing.Hash)

func linear(f *fixture) (plumbing.Hash, plumbing.Hash) {
	f.write("a.txt", "a", "src/x.go", "x", "docs/r.md", "r")
	c1 := f.commit("one")
	f.write("src/x.go", "x2")
	f.commit("two")
	f.write("src/y.go", "y")
	f.git("rm", "-q", "docs/r.md")
	return c1, f.commit("three")
}

// merged returns main before the merge and the merge of a feature branch.
func merged(f *fixture) (plumbing.Hash, plumbing.Hash) {
	f.write("a.txt", "a")
	f.commit("one")
	f.git("checkout", "-q", "-b", "feature")
	f.write("feat/f.go", "f")
	f.commit("feature")
	f.git("checkout", "-q", "main")
	f.write("main/m.go", "m")
	before := f.commit("main")
	f.git("merge", "-q", "--no-ff", "-m", "merge", "feature")
	return before, plumbing.NewHash(f.git("rev-parse", "HEAD"))
}

func renamed(f *fixture) (plumbing.Hash, plumbing.Hash) {
	f.write("old/a.txt", "a", "keep.txt", "k")
	base := f.commit("one")
	if err := os.Mkdir(filepath.Join(f.dir, "new"), 0o755); err != nil {
		f.t.Fatal(err)
	}
	f.git("mv", "old/a.txt", "new/a.txt")
	return base, f.commit("mv")
}

func deletedDir(f *fixture) (plumbing.Hash, plumbing.Hash) {
	f.write("d/a", "a", "d/e/b", "b", "keep", "k")
	base := f.commit("one")
	f.git("rm", "-q", "-r", "d")
	return base, f.commit("rm")
}

func modeChanged(f *fixture) (plumbing.Hash, plumbing.Hash) {
	f.write("run.sh", "echo")
	base := f.commit("one")
	f.git("update-index", "--chmod=+x", "run.sh")
	return base, f.commit("chmod")
}

func fileToDir(f *fixture) (plumbing.Hash, plumbing.Hash) {
	f.write("x", "file")
	base := f.commit("one")
	f.git("rm", "-q", "x")
	f.write("x/y", "y")
	return base, f.commit("dir")
}

// forcePushed returns a pushed commit and the head that replaced it after a
// reset to its parent.
func forcePushed(f *fixture) (plumbing.Hash, plumbing.Hash) {
	f.write("a", "a")
	c1 := f.commit("one")
	f.write("b", "b")
	pushed := f.commit("two")
	f.git("reset", "-q", "--hard", c1.String())
	f.write("c", "c")
	return pushed, f.commit("rewritten")
}

// onLinear compares other commits of the linear history: pick gets linear's
// base and head and returns the pair to compare.
func onLinear(pick func(f *fixture, base, head plumbing.Hash) (plumbing.Hash, plumbing.Hash)) scenario {
	return func(f *fixture) (plumbing.Hash, plumbing.Hash) {
		base, head := linear(f)
		return pick(f, base, head)
	}
}
