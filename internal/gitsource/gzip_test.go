package gitsource

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flow-ci/flow-ci/internal/gittest"
)

// A server that compresses what it sends, asked or not, is read by its decoded size:
// every call stops at its budget with ErrTooLarge (SourceTooLarge in a run's status),
// however little crossed the wire. Go's transport would otherwise inflate it unseen.
func TestGzipServersStopAtTheBudget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	calls := map[string]func(url string) error{
		"resolve": func(url string) error {
			_, err := ResolveCommit(ctx, url, "main", "", nil, loopback)
			return err
		},
		"read": func(url string) error {
			_, err := ReadFile(ctx, url, gittest.GzipHead, pipelinePath, maxPipelineFile, nil, loopback)
			return err
		},
		"list branches": func(url string) error {
			_, err := ListBranches(ctx, url, nil, loopback)
			return err
		},
		"clone": func(url string) error {
			dir := filepath.Join(t.TempDir(), "src")
			err := Clone(ctx, url, "main", gittest.GzipHead, dir, nil, loopback, WithBudget(Budget{Bytes: 64 << 20, Pack: 32 << 20}))
			if left, _ := os.ReadDir(dir); len(left) > 0 {
				t.Errorf("the failed clone left %d entries in its directory", len(left))
			}
			return err
		},
	}
	for _, kind := range []struct {
		name  string
		kind  gittest.HostileKind
		calls []string
		why   string
	}{
		{"endless refs", gittest.GzipRefs, []string{"resolve", "read", "list branches", "clone"}, ""},
		{"5000 refs of 60 KB", gittest.GzipLongRefs, []string{"resolve", "read", "list branches", "clone"}, "more than 4096"},
		{"endless pack", gittest.GzipPack, []string{"read", "clone"}, ""},
	} {
		for _, name := range kind.calls {
			t.Run(kind.name+"/"+name, func(t *testing.T) {
				t.Parallel()
				h := gittest.NewHostileServer(t, kind.kind, "")
				err := calls[name](h.URL)
				if !errors.Is(err, ErrTooLarge) || !IsPermanent(err) {
					t.Fatalf("%s = %v, want ErrTooLarge", name, err)
				}
				if !strings.Contains(err.Error(), kind.why) {
					t.Errorf("%s = %v, want it to say %q", name, err, kind.why)
				}
				// The wire carried a small fraction of what the budget bounds decoded.
				if n := h.Written.Load(); n > 8<<20 {
					t.Errorf("the server wrote %d compressed bytes", n)
				}
			})
		}
	}
}

// A well-behaved server that compresses anyway is read correctly.
func TestGzipServerIsRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repo := gittest.NewRepo(t, map[string]string{pipelinePath: "name: gz\n"})
	srv := gittest.NewHTTPServer(t, repo.Root, gittest.HTTPOptions{Gzip: true})
	url, tip := srv.RepoURL(repo), repo.RevParse(t, "main")
	got, err := ResolveCommit(ctx, url, "main", "", nil, loopback)
	if err != nil || got != tip {
		t.Fatalf("ResolveCommit = %q, %v; want %s", got, err, tip)
	}
	raw, err := ReadFile(ctx, url, tip, pipelinePath, maxPipelineFile, nil, loopback)
	if err != nil || string(raw) != "name: gz\n" {
		t.Fatalf("ReadFile = %q, %v", raw, err)
	}
	dir := filepath.Join(t.TempDir(), "src")
	if err := Clone(ctx, url, "main", tip, dir, nil, loopback); err != nil {
		t.Fatalf("Clone: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, pipelinePath)); string(b) != "name: gz\n" {
		t.Fatalf("cloned %s = %q", pipelinePath, b)
	}
}

// The ref advertisement's lines are bounded as they arrive.
func TestRefLimiter(t *testing.T) {
	t.Parallel()
	line := func(n int) string { return pkt(strings.Repeat("a", n)) }
	for _, tc := range []struct {
		name    string
		in      string
		wantErr string
	}{
		{"a normal advertisement", pkt("# service=git-upload-pack\n") + "0000" + line(60) + line(60) + "0000", ""},
		{"a line at the limit", pkt("# service=git-upload-pack\n") + "0000" + line(maxRefLine), ""},
		{"a line over the limit", pkt("# service=git-upload-pack\n") + "0000" + line(maxRefLine+1), "more than 4096"},
		{"split prefixes", "00" + "0a" + "abcdef", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var failed error
			l := &refLimiter{r: strings.NewReader(tc.in), fail: func(err error) { failed = err }}
			buf := make([]byte, 3) // small reads split prefixes and lines
			var err error
			for err == nil {
				_, err = l.Read(buf)
			}
			if tc.wantErr == "" {
				if failed != nil {
					t.Fatalf("refused: %v", failed)
				}
				return
			}
			if failed == nil || !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, recorded %v; want ErrTooLarge with %q", err, failed, tc.wantErr)
			}
		})
	}
	t.Run("too many refs", func(t *testing.T) {
		var b strings.Builder
		b.WriteString(pkt("# service=git-upload-pack\n") + "0000")
		for range maxRefs + 1 {
			b.WriteString(line(50))
		}
		l := &refLimiter{r: strings.NewReader(b.String()), fail: func(error) {}}
		_, err := io.ReadAll(l)
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "more than 100000 refs") {
			t.Fatalf("err = %v, want the ref count refused", err)
		}
	})
}

func pkt(s string) string {
	const hex = "0123456789abcdef"
	n := len(s) + 4
	return string([]byte{hex[n>>12&15], hex[n>>8&15], hex[n>>4&15], hex[n&15]}) + s
}
