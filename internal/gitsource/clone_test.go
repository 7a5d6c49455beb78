package gitsource

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flow-ci/flow-ci/internal/gittest"
)

func TestClone(t *testing.T) {
	t.Parallel()
	f := newFixture(t, gittest.HTTPOptions{})
	ctx := context.Background()

	// check asserts with the real git CLI that dir is a clean, shallow
	// checkout of commit with the expected pipeline file.
	check := func(t *testing.T, dir, commit, content string) {
		t.Helper()
		if got := strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "HEAD")); got != commit {
			t.Errorf("HEAD = %s, want %s", got, commit)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, pipelinePath)); string(got) != content {
			t.Errorf("%s = %q, want %q", pipelinePath, got, content)
		}
		if st := gittest.Git(t, dir, "status", "--porcelain"); st != "" {
			t.Errorf("worktree not clean:\n%s", st)
		}
		if sh := strings.TrimSpace(gittest.Git(t, dir, "rev-parse", "--is-shallow-repository")); sh != "true" {
			t.Errorf("is-shallow-repository = %s, want true", sh)
		}
	}

	t.Run("tip of the branch", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "src")
		if err := Clone(ctx, f.url, "main", f.tip, dir, nil, loopback); err != nil {
			t.Fatal(err)
		}
		check(t, dir, f.tip, "version: tip\n")
		if b := strings.TrimSpace(gittest.Git(t, dir, "symbolic-ref", "HEAD")); b != "refs/heads/main" {
			t.Errorf("HEAD -> %s, want refs/heads/main", b)
		}
	})
	t.Run("pinned older commit into an existing empty dir", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		if err := Clone(ctx, f.url, "main", f.old, dir, nil, loopback); err != nil {
			t.Fatal(err)
		}
		check(t, dir, f.old, "version: old\n")
	})
	t.Run("detached without a branch", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		if err := Clone(ctx, f.url, "", f.tip, dir, nil, loopback); err != nil {
			t.Fatal(err)
		}
		check(t, dir, f.tip, "version: tip\n")
	})
	t.Run("non-empty dir is refused", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := Clone(ctx, f.url, "main", f.tip, dir, nil, loopback); err == nil || !strings.Contains(err.Error(), "not empty") {
			t.Fatalf("Clone into non-empty dir: %v", err)
		}
	})
	t.Run("unknown commit leaves the dir empty for a retry", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		err := Clone(ctx, f.url, "main", strings.Repeat("2", 40), dir, nil, loopback)
		wantErr(t, err, ErrRevisionNotServed, true)
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("dir holds %d entries after a failed clone", len(entries))
		}
		if err := Clone(ctx, f.url, "main", f.tip, dir, nil, loopback); err != nil {
			t.Fatalf("retry: %v", err)
		}
	})
	t.Run("invalid inputs fail before any network", func(t *testing.T) {
		t.Parallel()
		wantErr(t, Clone(ctx, f.url, "main", "HEAD", t.TempDir(), nil, loopback), ErrInvalidRevision, true)
		wantErr(t, Clone(ctx, f.url, "-x", f.tip, t.TempDir(), nil, loopback), ErrInvalidBranch, true)
		wantErr(t, Clone(ctx, "file:///etc", "main", f.tip, t.TempDir(), nil, loopback), ErrInvalidURL, true)
	})
}
