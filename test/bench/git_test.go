package bench

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net/netip"
	"path"
	"strings"
	"sync"
	"testing"

	"github.com/flow-ci/flow-ci/internal/gitsource"
	"github.com/flow-ci/flow-ci/internal/gittest"
)

// loopback is where the benchmark's git server listens.
var loopback = netip.MustParsePrefix("127.0.0.0/8")

// gitServer serves a repository per run: distinct repositories and commits, as a burst
// of pushes to many projects would bring, so no fetch is shared by accident.
type gitServer struct {
	tb   testing.TB
	srv  *gittest.HTTPServer
	root string

	mu    sync.Mutex
	repos map[string]string
}

func newGitServer(tb testing.TB) *gitServer {
	root := tb.TempDir()
	return &gitServer{tb: tb, root: root, srv: gittest.NewHTTPServer(tb, root, gittest.HTTPOptions{}), repos: map[string]string{}}
}

// repoURL returns the URL of repository i of pipelines with steps steps (graph: see
// pipelineYAML), creating it on first use.
func (g *gitServer) repoURL(shape string, i int) string {
	// owner/name, as a forge serves it: the shipped cell reports commit statuses.
	name := fmt.Sprintf("bench/%s-%04d.git", shape, i)
	g.mu.Lock()
	defer g.mu.Unlock()
	if url, ok := g.repos[name]; ok {
		return url
	}
	repo := gittest.NewRepoIn(g.tb, g.root, name, map[string]string{
		"build/flow-ci.yaml": pipelineYAML(shape), "README.md": fmt.Sprintf("repository %d\n", i),
	})
	g.repos[name] = g.srv.RepoURL(repo)
	return g.repos[name]
}

// warm creates repositories 0..n-1 of shape before a cell is timed.
func (g *gitServer) warm(shape string, n int) {
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				g.repoURL(shape, i)
			}
		})
	}
	wg.Wait()
}

// pipelineYAML is the pipeline file of a shape (shapeOf).
func pipelineYAML(shape string) string { return shapeOf(shape).yaml() }

// stubSource answers without git: the commit is a hash of the URL and the file the
// URL's shape. It separates the controller's own cost from git's.
type stubSource struct{}

func (stubSource) ResolveCommit(_ context.Context, repoURL, _, revision string, _ *gitsource.Auth) (string, error) {
	if revision != "" {
		return revision, nil
	}
	sum := sha1.Sum([]byte(repoURL))
	return hex.EncodeToString(sum[:]), nil
}

func (stubSource) ReadFile(_ context.Context, repoURL, _, _ string, _ *gitsource.Auth) ([]byte, error) {
	shape, _, _ := strings.Cut(path.Base(repoURL), "-")
	return []byte(pipelineYAML(shape)), nil
}

func (stubSource) ChangedFiles(context.Context, string, string, string, *gitsource.Auth) ([]string, bool, error) {
	return nil, true, nil
}

func (stubSource) ChangedFilesFromMergeBase(context.Context, string, string, string, *gitsource.Auth) ([]string, bool, error) {
	return nil, true, nil
}

func (stubSource) OnBranch(context.Context, string, string, string, *gitsource.Auth) (bool, error) {
	return true, nil
}
