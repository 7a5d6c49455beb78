package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// TestVerifyCheckout: a resumed workspace passes only with the checkout at the commit
// and the steps' HOME; a cleaned or moved one fails, saying to run it all again.
func TestVerifyCheckout(t *testing.T) {
	ws := t.TempDir()
	src, home := filepath.Join(ws, "src"), filepath.Join(ws, "home")
	repo, err := git.PlainInit(src, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "a"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	wt, _ := repo.Worktree()
	if _, err := wt.Add("a"); err != nil {
		t.Fatal(err)
	}
	hash, err := wt.Commit("a", &git.CommitOptions{Author: &object.Signature{Name: "t", Email: "t@example.com", When: time.Unix(1e9, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	commit := hash.String()
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, dest, home, commit, want string
	}{
		{"the checkout and HOME", src, home, commit, ""},
		{"another commit", src, home, strings.Repeat("1", 40), "is at " + commit},
		{"cleaned", filepath.Join(ws, "gone"), home, commit, "no checkout"},
		{"no HOME", src, filepath.Join(ws, "nohome"), commit, "HOME"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := verifyCheckout(c.dest, c.home, c.commit)
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Errorf("verifyCheckout = %v, want %q", err, c.want)
			}
		})
	}
}
