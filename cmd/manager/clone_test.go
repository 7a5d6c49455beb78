package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flow-ci/flow-ci/internal/gittest"
)

// TestCloneSubcommand runs the clone Job's entry point against a real git server,
// with the git Secret mounted as files the way a Secret volume lays them out.
func TestCloneSubcommand(t *testing.T) {
	repo := gittest.NewRepo(t, map[string]string{"build/flow-ci.yaml": "name: x\n", "main.go": "package main\n"})
	first := repo.RevParse(t, "main")
	repo.Commit(t, map[string]string{"main.go": "package main // moved on\n"})
	srv := gittest.NewHTTPServer(t, repo.Root, gittest.HTTPOptions{Username: "ci", Password: "pw-123", TLS: true})

	secretDir := t.TempDir()
	data := filepath.Join(secretDir, "..2026_11_28")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string][]byte{"username": []byte("ci"), "password": []byte("pw-123"), "ca.crt": srv.CACert} {
		if err := os.WriteFile(filepath.Join(data, k), v, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..2026_11_28", k), filepath.Join(secretDir, k)); err != nil {
			t.Fatal(err)
		}
	}
	ws := t.TempDir()
	code := runClone([]string{"--allowed-networks", "127.0.0.0/8", "--repo", srv.RepoURL(repo), "--branch", "main", "--commit", first,
		"--dest", filepath.Join(ws, "src"), "--home", filepath.Join(ws, "home"), "--secret-dir", secretDir})
	if code != 0 {
		t.Fatalf("clone exited %d", code)
	}
	got, err := os.ReadFile(filepath.Join(ws, "src", "main.go"))
	if err != nil || string(got) != "package main\n" {
		t.Errorf("main.go at the pinned commit = %q, %v", got, err)
	}
	if st, err := os.Stat(filepath.Join(ws, "home")); err != nil || !st.IsDir() {
		t.Errorf("home not created: %v", err)
	}
	if head := strings.TrimSpace(gittest.Git(t, filepath.Join(ws, "src"), "rev-parse", "HEAD")); head != first {
		t.Errorf("HEAD = %s, want %s", head, first)
	}

	// Without the Secret the server refuses, and the exit code says so.
	if code := runClone([]string{"--allowed-networks", "127.0.0.0/8", "--repo", srv.RepoURL(repo), "--commit", first, "--dest", filepath.Join(t.TempDir(), "src")}); code != 1 {
		t.Errorf("clone without credentials exited %d, want 1", code)
	}
	// Without the allow-list, loopback is out of reach.
	if code := runClone([]string{"--repo", srv.RepoURL(repo), "--commit", first, "--dest", filepath.Join(t.TempDir(), "src"), "--secret-dir", secretDir}); code != 1 {
		t.Errorf("clone of a loopback server exited %d, want 1", code)
	}
}
