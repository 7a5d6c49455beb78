package gitsource

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flow-ci/flow-ci/internal/gittest"
)

func TestSSH(t *testing.T) {
	t.Parallel()
	r := gittest.NewRepo(t, map[string]string{pipelinePath: "version: old\n"})
	old := r.RevParse(t, "main")
	tip := r.Commit(t, map[string]string{pipelinePath: "version: tip\n"})
	allowed := gittest.NewRepoIn(t, r.Root, "allow-sha.git", map[string]string{pipelinePath: "version: old\n"})
	allowedOld := allowed.RevParse(t, "main")
	allowed.Commit(t, map[string]string{pipelinePath: "version: tip\n"})
	allowed.SetConfig(t, "uploadpack.allowReachableSHA1InWant", "true")

	srv := gittest.NewSSHServer(t, r.Root)
	url := srv.RepoURL(r)
	ctx := context.Background()
	const passphrase = "correct horse battery staple"
	auth := func(t *testing.T, identity, knownHosts []byte, password string) *Auth {
		t.Helper()
		a, err := AuthFromSecretData(map[string][]byte{
			KeyIdentity: identity, KeyKnownHosts: knownHosts, KeyPassword: []byte(password),
		})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	good := auth(t, srv.Identity, srv.KnownHosts, "")

	t.Run("resolve and read the tip", func(t *testing.T) {
		t.Parallel()
		got, err := ResolveCommit(ctx, url, "main", "", good, loopback)
		if err != nil || got != tip {
			t.Fatalf("ResolveCommit = %s, %v; want %s", got, err, tip)
		}
		b, err := ReadFile(ctx, url, tip, pipelinePath, maxPipelineFile, good, loopback)
		if err != nil || string(b) != "version: tip\n" {
			t.Fatalf("ReadFile = %q, %v", b, err)
		}
	})
	t.Run("encrypted identity with its passphrase", func(t *testing.T) {
		t.Parallel()
		a := auth(t, srv.EncryptedIdentity(t, passphrase), srv.KnownHosts, passphrase)
		if _, err := ResolveCommit(ctx, url, "main", "", a, loopback); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("unadvertised commit is refused by default", func(t *testing.T) {
		t.Parallel()
		_, err := ReadFile(ctx, url, old, pipelinePath, maxPipelineFile, good, loopback)
		wantErr(t, err, ErrRevisionNotServed, true)
		if !strings.Contains(err.Error(), old) {
			t.Errorf("error %q does not name the commit", err)
		}
	})
	t.Run("unadvertised commit with allowReachableSHA1InWant", func(t *testing.T) {
		t.Parallel()
		b, err := ReadFile(ctx, srv.RepoURL(allowed), allowedOld, pipelinePath, maxPipelineFile, good, loopback)
		if err != nil || string(b) != "version: old\n" {
			t.Fatalf("ReadFile = %q, %v", b, err)
		}
	})
	t.Run("clone", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "src")
		if err := Clone(ctx, url, "main", tip, dir, good, loopback); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, pipelinePath)); string(got) != "version: tip\n" {
			t.Errorf("worktree file = %q", got)
		}
	})
	t.Run("mismatching known_hosts", func(t *testing.T) {
		t.Parallel()
		a := auth(t, srv.Identity, srv.WrongKnownHosts, "")
		_, err := ResolveCommit(ctx, url, "main", "", a, loopback)
		wantErr(t, err, ErrHostKeyMismatch, true)
		if !strings.Contains(err.Error(), "does not match known_hosts") {
			t.Errorf("error %q does not say what failed", err)
		}
	})
	t.Run("host missing from known_hosts", func(t *testing.T) {
		t.Parallel()
		other := strings.Replace(string(srv.KnownHosts), "127.0.0.1", "127.0.0.2", 1)
		_, err := ResolveCommit(ctx, url, "main", "", auth(t, srv.Identity, []byte(other), ""), loopback)
		wantErr(t, err, ErrHostKeyMismatch, true)
	})
	t.Run("key the server does not accept", func(t *testing.T) {
		t.Parallel()
		stranger := gittest.NewSSHServer(t, t.TempDir())
		_, err := ResolveCommit(ctx, url, "main", "", auth(t, stranger.Identity, srv.KnownHosts, ""), loopback)
		wantErr(t, err, ErrAuthenticationFailed, true)
		if strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Errorf("error %q leaks the key", err)
		}
	})
	t.Run("missing repository", func(t *testing.T) {
		t.Parallel()
		_, err := ResolveCommit(ctx, "ssh://git@"+srv.Addr+"/missing.git", "main", "", good, loopback)
		wantErr(t, err, ErrRepositoryNotFound, true)
	})
	t.Run("ssh url without identity", func(t *testing.T) {
		t.Parallel()
		_, err := ResolveCommit(ctx, url, "main", "", nil, loopback)
		wantErr(t, err, ErrInvalidAuth, true)
	})
}
