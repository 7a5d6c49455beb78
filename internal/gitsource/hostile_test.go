package gitsource

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flow-ci/flow-ci/internal/gittest"
)

// Every read from a hostile server stops at its limit with a typed error, and nothing
// the server sent reaches the message. The memory these reads take is a benchmark
// figure (BenchmarkHostileReads), not a test.
func TestHostileServers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	commit := strings.Repeat("a", 40)
	clean := func(t *testing.T, err error) {
		t.Helper()
		if strings.Contains(err.Error(), gittest.HostileSecret) {
			t.Errorf("server text in the error: %q", err)
		}
	}

	t.Run("endless ref advertisement", func(t *testing.T) {
		t.Parallel()
		h := gittest.NewHostileServer(t, gittest.EndlessRefs, "")
		_, err := ResolveCommit(ctx, h.URL, "main", "", nil, loopback)
		if !errors.Is(err, ErrTooLarge) || !IsPermanent(err) {
			t.Fatalf("ResolveCommit = %v, want ErrTooLarge", err)
		}
		_, err = ReadFile(ctx, h.URL, commit, pipelinePath, maxPipelineFile, nil, loopback)
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("ReadFile = %v, want ErrTooLarge", err)
		}
	})
	t.Run("huge error body", func(t *testing.T) {
		t.Parallel()
		h := gittest.NewHostileServer(t, gittest.HugeErrorBody, "")
		_, err := ResolveCommit(ctx, h.URL, "main", "", nil, loopback)
		if !errors.Is(err, ErrRepositoryNotFound) || !strings.Contains(err.Error(), "HTTP 404") {
			t.Fatalf("ResolveCommit = %v, want ErrRepositoryNotFound with its status", err)
		}
		clean(t, err)
		// The body is read up to 64 KiB, then the connection goes; socket buffers take
		// a little more, nothing near the 200 MiB it tried to send.
		if n := h.Written.Load(); n > 16<<20 {
			t.Errorf("the server wrote %d bytes", n)
		}
	})
	t.Run("redirect to a denied address", func(t *testing.T) {
		t.Parallel()
		h := gittest.NewHostileServer(t, gittest.RedirectTo, "http://169.254.169.254")
		_, err := ResolveCommit(ctx, h.URL, "main", "", nil, loopback)
		if !errors.Is(err, ErrAddressNotAllowed) {
			t.Fatalf("ResolveCommit = %v, want ErrAddressNotAllowed", err)
		}
	})
	t.Run("redirect to another allowed origin", func(t *testing.T) {
		t.Parallel()
		repo := gittest.NewRepo(t, map[string]string{pipelinePath: "x"})
		other := gittest.NewHTTPServer(t, repo.Root, gittest.HTTPOptions{})
		h := gittest.NewHostileServer(t, gittest.RedirectTo, other.URL)
		_, err := ResolveCommit(ctx, h.URL, "main", "", nil, loopback)
		if !errors.Is(err, ErrAddressNotAllowed) || !strings.Contains(err.Error(), "another origin") {
			t.Fatalf("ResolveCommit = %v, want the cross-origin redirect refused", err)
		}
	})
	t.Run("slow drip", func(t *testing.T) {
		t.Parallel()
		h := gittest.NewHostileServer(t, gittest.SlowDrip, "")
		_, err := ResolveCommit(ctx, h.URL, "main", "", nil, loopback, WithTimeout(time.Second))
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("ResolveCommit = %v, want ErrTimeout", err)
		}
	})
	t.Run("unfiltered commit with a huge blob", func(t *testing.T) {
		t.Parallel()
		files := map[string]string{pipelinePath: "name: x\n", "zeros.bin": strings.Repeat("\x00", 64<<20)}
		repo := gittest.NewRepo(t, files)
		srv := gittest.NewHTTPServer(t, repo.Root, gittest.HTTPOptions{})
		_, err := ReadFile(ctx, srv.RepoURL(repo), repo.RevParse(t, "main"), pipelinePath, maxPipelineFile, nil, loopback)
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "uploadpack.allowFilter") {
			t.Fatalf("ReadFile = %v, want ErrTooLarge naming the server setting", err)
		}
		// The same repository served with filtering: only the trees and the one blob.
		repo.SetConfig(t, "uploadpack.allowFilter", "true")
		got, err := ReadFile(ctx, srv.RepoURL(repo), repo.RevParse(t, "main"), pipelinePath, maxPipelineFile, nil, loopback)
		if err != nil || string(got) != "name: x\n" {
			t.Fatalf("ReadFile with filtering = %q, %v", got, err)
		}
		// And the huge blob itself is refused from its header.
		_, err = ReadFile(ctx, srv.RepoURL(repo), repo.RevParse(t, "main"), "zeros.bin", maxPipelineFile, nil, loopback)
		if !errors.Is(err, ErrFileTooLarge) {
			t.Fatalf("ReadFile of the blob = %v, want ErrFileTooLarge", err)
		}
	})
}
