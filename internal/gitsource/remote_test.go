package gitsource

import (
	"context"
	"errors"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/flow-ci/flow-ci/internal/gittest"
	"github.com/flow-ci/flow-ci/internal/pipeline"
)

const pipelinePath = "build/flow-ci.yaml"

// maxPipelineFile is the limit the operator reads pipeline files with.
const maxPipelineFile = pipeline.MaxFileSize

// loopback lets a call reach the test servers, which listen on loopback: the default
// egress policy refuses it.
var loopback = WithAllowedNetworks(netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"))

// fixture is a repository with two commits on main (old, tip) and a
// feature branch, served by the real git http-backend.
type fixture struct {
	repo     *gittest.Repo
	srv      *gittest.HTTPServer
	url      string
	old, tip string
}

func newFixture(t *testing.T, opts gittest.HTTPOptions) fixture {
	t.Helper()
	r := gittest.NewRepo(t, map[string]string{pipelinePath: "version: old\n", "README.md": "hi\n"})
	old := r.RevParse(t, "main")
	tip := r.Commit(t, map[string]string{pipelinePath: "version: tip\n"})
	r.CommitOn(t, "feature/x", map[string]string{pipelinePath: "version: feature\n"})
	srv := gittest.NewHTTPServer(t, r.Root, opts)
	return fixture{repo: r, srv: srv, url: srv.RepoURL(r), old: old, tip: tip}
}

func wantErr(t *testing.T, err, target error, permanent bool) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want errors.Is %v", err, target)
	}
	if IsPermanent(err) != permanent {
		t.Fatalf("IsPermanent(%v) = %v, want %v", err, !permanent, permanent)
	}
}

func TestResolveCommit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, gittest.HTTPOptions{})
	empty := gittest.NewRepoIn(t, f.repo.Root, "empty.git", nil)
	base := f.srv.URL
	ctx := context.Background()

	t.Run("branch head matches git rev-parse", func(t *testing.T) {
		for _, branch := range []string{"main", "feature/x"} {
			got, err := ResolveCommit(ctx, f.url, branch, "", nil, loopback)
			if err != nil {
				t.Fatal(err)
			}
			if want := f.repo.RevParse(t, branch); got != want {
				t.Errorf("ResolveCommit(%s) = %s, want %s", branch, got, want)
			}
		}
	})
	t.Run("pinned revision is returned lowercased without a fetch", func(t *testing.T) {
		got, err := ResolveCommit(ctx, "https://git.invalid/x.git", "main", strings.ToUpper(f.old), nil, loopback)
		if err != nil || got != f.old {
			t.Fatalf("got %q, %v; want %s", got, err, f.old)
		}
		_, err = ResolveCommit(ctx, f.url, "main", "abc123", nil, loopback)
		wantErr(t, err, ErrInvalidRevision, true)
	})
	t.Run("missing branch", func(t *testing.T) {
		_, err := ResolveCommit(ctx, f.url, "nope", "", nil, loopback)
		wantErr(t, err, ErrBranchNotFound, true)
	})
	t.Run("empty repository", func(t *testing.T) {
		_, err := ResolveCommit(ctx, base+"/"+empty.Name, "main", "", nil, loopback)
		wantErr(t, err, ErrEmptyRepository, true)
	})
	t.Run("missing repository", func(t *testing.T) {
		_, err := ResolveCommit(ctx, base+"/missing.git", "main", "", nil, loopback)
		wantErr(t, err, ErrRepositoryNotFound, true)
	})
	t.Run("invalid branch is rejected before dialling", func(t *testing.T) {
		_, err := ResolveCommit(ctx, f.url, "--upload-pack=touch /tmp/x", "", nil, loopback)
		wantErr(t, err, ErrInvalidBranch, true)
	})
}

func TestReadFile(t *testing.T) {
	t.Parallel()
	f := newFixture(t, gittest.HTTPOptions{})
	ctx := context.Background()

	cases := []struct {
		name, commit, path string
		want               string
		wantErr            error
	}{
		{name: "tip", commit: f.tip, path: pipelinePath, want: "version: tip\n"},
		{name: "pinned older commit", commit: f.old, path: pipelinePath, want: "version: old\n"},
		{name: "uppercase commit id", commit: strings.ToUpper(f.tip), path: "README.md", want: "hi\n"},
		{name: "missing file", commit: f.tip, path: "build/other.yaml", wantErr: ErrFileNotFound},
		{name: "directory", commit: f.tip, path: "build", wantErr: ErrFileNotFound},
		{name: "below a file", commit: f.tip, path: "README.md/x", wantErr: ErrFileNotFound},
		{name: "unknown commit", commit: strings.Repeat("1", 40), path: pipelinePath, wantErr: ErrRevisionNotServed},
		{name: "path escapes", commit: f.tip, path: "../etc/passwd", wantErr: ErrInvalidPath},
		{name: "sha-256 id", commit: strings.Repeat("a", 64), path: pipelinePath, wantErr: ErrInvalidRevision},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ReadFile(ctx, f.url, tc.commit, tc.path, maxPipelineFile, nil, loopback)
			if tc.wantErr != nil {
				wantErr(t, err, tc.wantErr, true)
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("ReadFile = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestReadFileTooLarge is not parallel: it measures this process's
// allocations to show the blob was not downloaded.
func TestReadFileTooLarge(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 10<<20/16) // 10 MiB
	r := gittest.NewRepo(t, map[string]string{pipelinePath: big, "small.yaml": strings.Repeat("x", 1024)})
	srv := gittest.NewHTTPServer(t, r.Root, gittest.HTTPOptions{})
	tip := r.RevParse(t, "main")
	ctx := context.Background()

	t.Run("size checked before reading", func(t *testing.T) {
		before := totalAlloc()
		_, err := ReadFile(ctx, srv.RepoURL(r), tip, pipelinePath, maxPipelineFile, nil, loopback)
		t.Logf("allocated %d bytes without a filter", totalAlloc()-before)
		wantErr(t, err, ErrFileTooLarge, true)
		if !strings.Contains(err.Error(), "10485760 bytes") {
			t.Errorf("error %q does not report the size", err)
		}
		got, err := ReadFile(ctx, srv.RepoURL(r), tip, "small.yaml", 1024, nil, loopback)
		if err != nil || len(got) != 1024 {
			t.Fatalf("file at the limit: %d bytes, %v", len(got), err)
		}
	})
	t.Run("partial clone leaves the blob on the server", func(t *testing.T) {
		r.SetConfig(t, "uploadpack.allowFilter", "true")
		before := totalAlloc()
		_, err := ReadFile(ctx, srv.RepoURL(r), tip, pipelinePath, maxPipelineFile, nil, loopback)
		allocated := totalAlloc() - before
		wantErr(t, err, ErrFileTooLarge, true)
		t.Logf("allocated %d bytes with blob:limit", allocated)
		if !strings.Contains(err.Error(), "larger than 262144 bytes") {
			t.Errorf("error %q: the blob was downloaded despite the filter", err)
		}
		if allocated > 4<<20 {
			t.Errorf("allocated %d bytes reading a 10 MiB file that should have been filtered", allocated)
		}
	})
}

func totalAlloc() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

func TestTimeoutOnSilentServer(t *testing.T) {
	t.Parallel()
	addr := gittest.NewSilentServer(t)
	keys := gittest.NewSSHServer(t, t.TempDir())
	sshAuth, err := AuthFromSecretData(map[string][]byte{KeyIdentity: keys.Identity, KeyKnownHosts: keys.KnownHosts})
	if err != nil {
		t.Fatal(err)
	}
	commit := strings.Repeat("a", 40)
	ctx := context.Background()
	cases := map[string]func() error{
		"http resolve": func() error {
			_, err := ResolveCommit(ctx, "http://"+addr+"/repo.git", "main", "", nil, WithTimeout(2*time.Second), loopback)
			return err
		},
		"http read": func() error {
			_, err := ReadFile(ctx, "http://"+addr+"/repo.git", commit, pipelinePath, maxPipelineFile, nil, WithTimeout(2*time.Second), loopback)
			return err
		},
		"ssh resolve": func() error {
			_, err := ResolveCommit(ctx, "ssh://git@"+addr+"/repo.git", "main", "", sshAuth, WithTimeout(2*time.Second), loopback)
			return err
		},
		"ssh clone": func() error {
			return Clone(ctx, "ssh://git@"+addr+"/repo.git", "main", commit, t.TempDir(), sshAuth, WithTimeout(2*time.Second), loopback)
		},
	}
	for name, run := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			err := run()
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("took %v with a 2s timeout", elapsed)
			}
			wantErr(t, err, ErrTimeout, false)
		})
	}
}

func TestHTTPSAuth(t *testing.T) {
	t.Parallel()
	const user, pass, token = "ci", "s3cret-Pa55w0rd", "tok-9f8e7d6c5b4a"
	f := newFixture(t, gittest.HTTPOptions{Username: user, Password: pass, TLS: true})
	ca, url := f.srv.CACert, f.url
	ctx := context.Background()

	auth := func(t *testing.T, data map[string]string) *Auth {
		t.Helper()
		m := map[string][]byte{KeyCACert: ca}
		for k, v := range data {
			m[k] = []byte(v)
		}
		a, err := AuthFromSecretData(m)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}

	t.Run("right credentials", func(t *testing.T) {
		a := auth(t, map[string]string{KeyUsername: user, KeyPassword: pass})
		got, err := ResolveCommit(ctx, url, "main", "", a, loopback)
		if err != nil || got != f.tip {
			t.Fatalf("ResolveCommit = %s, %v", got, err)
		}
		b, err := ReadFile(ctx, url, f.old, pipelinePath, maxPipelineFile, a, loopback)
		if err != nil || string(b) != "version: old\n" {
			t.Fatalf("ReadFile = %q, %v", b, err)
		}
	})
	for name, data := range map[string]map[string]string{
		"wrong password": {KeyUsername: user, KeyPassword: pass + "-wrong"},
		"wrong token":    {KeyBearerToken: token},
		"no credentials": {},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ResolveCommit(ctx, url, "main", "", auth(t, data), loopback)
			wantErr(t, err, ErrAuthenticationFailed, true)
			for _, secret := range []string{pass, token} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q leaks a secret", err)
				}
			}
		})
	}
	t.Run("unknown certificate authority", func(t *testing.T) {
		_, err := ResolveCommit(ctx, url, "main", "", nil, loopback)
		wantErr(t, err, ErrTLSVerification, true)
	})
	t.Run("credentials over plain http are refused", func(t *testing.T) {
		a := auth(t, map[string]string{KeyUsername: user, KeyPassword: pass})
		_, err := ResolveCommit(ctx, "http://127.0.0.1:1/repo.git", "main", "", a, loopback)
		wantErr(t, err, ErrInvalidAuth, true)
		_, err = ReadFile(ctx, "http://127.0.0.1:1/repo.git", f.tip, pipelinePath, maxPipelineFile, a, loopback)
		wantErr(t, err, ErrInvalidAuth, true)
	})
}

func TestOnBranch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo := gittest.NewRepo(t, map[string]string{pipelinePath: "v1\n"})
	first := repo.RevParse(t, "main")
	repo.Commit(t, map[string]string{pipelinePath: "v2\n"})
	tip := repo.RevParse(t, "main")
	side := repo.CommitOn(t, "side", map[string]string{pipelinePath: "side\n"})
	srv := gittest.NewHTTPServer(t, repo.Root, gittest.HTTPOptions{})
	url := srv.RepoURL(repo)
	check := func(commit string, want bool) {
		t.Helper()
		got, err := OnBranch(ctx, url, "main", commit, nil, loopback)
		if err != nil || got != want {
			t.Errorf("OnBranch(main, %s) = %v, %v; want %v", commit[:7], got, err, want)
		}
	}
	// Without filtering only the tip can be confirmed.
	check(tip, true)
	check(first, false)
	repo.SetConfig(t, "uploadpack.allowFilter", "true")
	check(tip, true)
	check(first, true)
	check(side, false)
	if got, err := OnBranch(ctx, url, "nope", tip, nil, loopback); got || err != nil {
		t.Errorf("unknown branch: %v, %v", got, err)
	}
}
