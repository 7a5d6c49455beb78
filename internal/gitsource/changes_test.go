package gitsource

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flow-ci/flow-ci/internal/gittest"
)

// TestChangedFiles on a real git server: the files between a base and a later head,
// across a merge; everything counts as changed for no base, a base that is not an
// ancestor of head (a force push past it), and a server that cannot filter.
func TestChangedFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo := gittest.NewRepo(t, map[string]string{"src/app.go": "v1\n", "docs/a.md": "a\n", "README.md": "r\n"})
	base := repo.RevParse(t, "main")
	// Commits on main and on a side branch from base, a rename and a merge, made in a
	// working copy and pushed.
	work := t.TempDir()
	git := func(args ...string) string {
		return strings.TrimSpace(gittest.Git(t, work, append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...))
	}
	git("clone", "-q", repo.Path, ".")
	git("checkout", "-q", "-b", "side")
	write(t, work, "side.txt", "s\n")
	git("add", "-A")
	git("commit", "-q", "-m", "side")
	side := git("rev-parse", "HEAD")
	git("checkout", "-q", "main")
	write(t, work, "docs/a.md", "a2\n")
	git("mv", "src/app.go", "src/main.go")
	git("commit", "-q", "-am", "docs and a rename")
	git("merge", "-q", "--no-ff", "-m", "merge side", "side")
	git("push", "-q", "origin", "main", "side")
	head := repo.RevParse(t, "main")
	srv := gittest.NewHTTPServer(t, repo.Root, gittest.HTTPOptions{})
	url := srv.RepoURL(repo)

	files, all, err := ChangedFiles(ctx, url, base, head, nil, loopback)
	if err != nil || !all {
		t.Errorf("a server that cannot filter: %q, all=%v, %v; want all", files, all, err)
	}
	repo.SetConfig(t, "uploadpack.allowFilter", "true")
	tests := []struct {
		name, base string
		want       []string
		all        bool
	}{
		{"a base on the branch", base, []string{"docs/a.md", "side.txt", "src/app.go", "src/main.go"}, false},
		{"the merged branch's commit as base", side, []string{"docs/a.md", "src/app.go", "src/main.go"}, false},
		{"no base: a first build or a run by hand", "", nil, true},
		{"the head itself", head, nil, false},
	}
	for _, tt := range tests {
		files, all, err := ChangedFiles(ctx, url, tt.base, head, nil, loopback)
		if err != nil || all != tt.all || !slices.Equal(files, tt.want) {
			t.Errorf("%s: %q, all=%v, %v; want %q, all=%v", tt.name, files, all, err, tt.want, tt.all)
		}
	}
	// A force push: main is reset past the base, which is no longer its ancestor.
	git("push", "-q", "--force", "origin", side+":refs/heads/main")
	files, all, err = ChangedFiles(ctx, url, head, repo.RevParse(t, "main"), nil, loopback)
	if err != nil || !all {
		t.Errorf("a force push past the base: %q, all=%v, %v; want all", files, all, err)
	}
	if _, _, err := ChangedFiles(ctx, url, "not-a-commit", head, nil, loopback); err == nil {
		t.Error("a malformed base: no error")
	}
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestListRefs: one advertisement gives the branches and the pull request heads, in
// GitHub's and Gitea's refs/pull/N/head and GitLab's refs/merge-requests/N/head; other
// refs (merge previews, tags, malformed numbers) are not pull requests.
func TestListRefs(t *testing.T) {
	t.Parallel()
	repo := gittest.NewRepo(t, map[string]string{"a": "1\n"})
	main := repo.RevParse(t, "main")
	pr := repo.CommitOn(t, "feature", map[string]string{"b": "2\n"})
	for _, ref := range []string{"refs/pull/12/head", "refs/pull/12/merge", "refs/merge-requests/7/head", "refs/pull/012/head", "refs/pull/x/head", "refs/tags/v1"} {
		gittest.Git(t, repo.Path, "update-ref", ref, pr)
	}
	srv := gittest.NewHTTPServer(t, repo.Root, gittest.HTTPOptions{})
	refs, err := ListRefs(context.Background(), srv.RepoURL(repo), nil, loopback)
	if err != nil {
		t.Fatal(err)
	}
	if refs.Branches["main"] != main || refs.Branches["feature"] != pr || len(refs.Branches) != 2 {
		t.Errorf("branches %v", refs.Branches)
	}
	if len(refs.Pulls) != 2 || refs.Pulls[12] != pr || refs.Pulls[7] != pr {
		t.Errorf("pulls %v, want 12 and 7", refs.Pulls)
	}
	if refs.Default != "main" {
		t.Errorf("default branch %q, want main (the remote's HEAD)", refs.Default)
	}
}

// TestChangedFilesFromMergeBase: a pull request's files are those its branch changed
// since it left the target, not what the target changed since.
func TestChangedFilesFromMergeBase(t *testing.T) {
	t.Parallel()
	repo := gittest.NewRepo(t, map[string]string{"a.txt": "1\n", "b.txt": "1\n"})
	repo.SetConfig(t, "uploadpack.allowFilter", "true")
	head := repo.CommitOn(t, "main", map[string]string{"ignored": ""}) // the fork point
	gittest.Git(t, repo.Path, "branch", "pr", head)
	prHead := repo.CommitOn(t, "pr", map[string]string{"pr/change.go": "x\n"})
	repo.Commit(t, map[string]string{"b.txt": "main moved on\n"})
	srv := gittest.NewHTTPServer(t, repo.Root, gittest.HTTPOptions{})
	files, all, err := ChangedFilesFromMergeBase(context.Background(), srv.RepoURL(repo), "main", prHead, nil, loopback)
	if err != nil || all || !slices.Equal(files, []string{"pr/change.go"}) {
		t.Errorf("%q, all=%v, %v; want only pr/change.go", files, all, err)
	}
	files, all, err = ChangedFilesFromMergeBase(context.Background(), srv.RepoURL(repo), "nope", prHead, nil, loopback)
	if err != nil || !all {
		t.Errorf("an unknown target: %q, all=%v, %v; want all", files, all, err)
	}
}
