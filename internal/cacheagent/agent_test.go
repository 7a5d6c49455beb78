package cacheagent_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/flow-ci/flow-ci/internal/archive"
	"github.com/flow-ci/flow-ci/internal/archive/api"
	"github.com/flow-ci/flow-ci/internal/archive/sqlstore"
	"github.com/flow-ci/flow-ci/internal/cacheagent"
	"github.com/flow-ci/flow-ci/internal/pipeline"
	"github.com/flow-ci/flow-ci/internal/webview"
	"github.com/flow-ci/flow-ci/internal/wsfiles"
)

// agents are the pods of the test's runs, by token: the cluster's part (TokenReview,
// pod, Job, run) is controllers/archive's, tested there and in the e2e.
type agents map[string]api.Agent

func (a agents) AuthenticateAgent(_ context.Context, token string) (api.Agent, error) {
	if g, ok := a[token]; ok {
		return g, nil
	}
	return api.Agent{}, webview.ErrUnauthenticated
}

type noReaders struct{}

func (noReaders) Authenticate(context.Context, string) (webview.User, error) {
	return webview.User{}, webview.ErrUnauthenticated
}
func (noReaders) Authorize(context.Context, webview.User, webview.Attributes) (bool, error) {
	return false, nil
}

const repo = "https://git.example/app.git"

func archiveServer(t *testing.T) (archive.Store, func(token string) *cacheagent.Client) {
	t.Helper()
	st, err := sqlstore.OpenEmbedded(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	run := func(uid, branch string, component string, saves bool) api.Agent {
		return api.Agent{Namespace: "ns", Run: uid, RunUID: uid, Component: component, RepoURL: repo, Branch: branch, SavesCaches: saves, Step: 1}
	}
	srv := httptest.NewTLSServer(api.New(api.Options{Store: st, Access: noReaders{}, Agents: agents{
		"main-save": run("u-main", "main", "step", true), "main-clone": run("u-main2", "main", "clone", false),
		"feature-clone": run("u-feat", "feature", "clone", false), "fork-save": run("u-fork", "fork", "step", false),
		"detached-clone": run("u-det", "", "clone", false),
	}}))
	t.Cleanup(srv.Close)
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	tokens := t.TempDir()
	return st, func(token string) *cacheagent.Client {
		f := filepath.Join(tokens, token)
		if err := os.WriteFile(f, []byte(token), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := cacheagent.NewClient(srv.URL, ca, f)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}

func workspace(t *testing.T, files map[string]string) string {
	t.Helper()
	ws := t.TempDir()
	for name, content := range files {
		p := filepath.Join(ws, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return ws
}

var goCache = cacheagent.Specs([]pipeline.Cache{{Name: "go", Paths: []string{"~/go/pkg/mod"}, KeyPrefix: "go", KeyFiles: []string{"go.sum"}, RestoreKeys: []string{"go-"}}})

// A trusted run saves; its entry is found once its run commits it, by the same branch
// (exact key) and by a new branch (from the default branch, by the restore key); an
// untrusted run's save is refused.
func TestSaveAndRestore(t *testing.T) {
	ctx := context.Background()
	st, client := archiveServer(t)
	ws := workspace(t, map[string]string{"src/go.sum": "v1\n", "home/go/pkg/mod/m@v1/a.go": "package m\n"})
	reps := cacheagent.Save(ctx, client("main-save"), goCache, ws, wsfiles.DefaultPackLimits())
	if !reps[0].Saved || reps[0].Key == "" || reps[0].SavedBytes == 0 {
		t.Fatalf("save: %+v", reps[0])
	}
	if r := cacheagent.Restore(ctx, client("main-clone"), goCache, workspace(t, map[string]string{"src/go.sum": "v1\n"}), "main", wsfiles.DefaultUnpackLimits()); r[0].RestoredKey != "" {
		t.Fatalf("an entry whose run has not succeeded was restored: %+v", r[0])
	}
	if _, err := st.FinishCaches(ctx, "u-main", true); err != nil {
		t.Fatal(err)
	}
	same := workspace(t, map[string]string{"src/go.sum": "v1\n"})
	r := cacheagent.Restore(ctx, client("main-clone"), goCache, same, "main", wsfiles.DefaultUnpackLimits())
	if r[0].RestoredKey != reps[0].Key || r[0].RestoredFrom != "main" {
		t.Fatalf("the same branch and key: %+v", r[0])
	}
	if b, err := os.ReadFile(filepath.Join(same, "home/go/pkg/mod/m@v1/a.go")); err != nil || string(b) != "package m\n" {
		t.Errorf("restored file: %q %v", b, err)
	}
	if again := cacheagent.Save(ctx, client("main-save"), goCache, same, wsfiles.DefaultPackLimits()); again[0].Saved {
		t.Errorf("an unchanged cache was saved again: %+v", again[0])
	}
	branch := workspace(t, map[string]string{"src/go.sum": "v2\n"})
	r = cacheagent.Restore(ctx, client("feature-clone"), goCache, branch, "main", wsfiles.DefaultUnpackLimits())
	if r[0].RestoredKey != reps[0].Key || r[0].RestoredFrom != "main" || r[0].Key == reps[0].Key {
		t.Errorf("a new branch with another go.sum restores main's entry by its restore key: %+v", r[0])
	}
	if r := cacheagent.Restore(ctx, client("detached-clone"), goCache, workspace(t, map[string]string{"src/go.sum": "v1\n"}), "", wsfiles.DefaultUnpackLimits()); r[0].Message != "no entry matches its key or restore keys" {
		t.Errorf("a detached run without a default branch: %+v, want a plain miss", r[0])
	}
	if r := cacheagent.Restore(ctx, client("detached-clone"), goCache, workspace(t, map[string]string{"src/go.sum": "v1\n"}), "main", wsfiles.DefaultUnpackLimits()); r[0].RestoredFrom != "main" {
		t.Errorf("a detached run restores the default branch's entry: %+v", r[0])
	}
	if fork := cacheagent.Save(ctx, client("fork-save"), goCache, branch, wsfiles.DefaultPackLimits()); fork[0].Saved || !strings.Contains(fork[0].Message, "403") {
		t.Errorf("an untrusted run saved: %+v", fork[0])
	}
}

// An entry holds only what its cache's directories hold once restored: whatever else it
// carries (a Makefile of the checkout) stays out of the workspace.
func TestRestorePlacesOnlyTheCachesDirectories(t *testing.T) {
	ctx := context.Background()
	st, client := archiveServer(t)
	var b bytes.Buffer
	zw, _ := zstd.NewWriter(&b)
	tw := tar.NewWriter(zw)
	for name, body := range map[string]string{"src/Makefile": "pwned\n", "home/go/pkg/mod/x": "ok\n"} {
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte(body))
	}
	_ = tw.Close()
	_ = zw.Close()
	if _, err := st.PutCache(ctx, archive.CacheEntry{Namespace: "ns", RepoURL: repo, Branch: "main", Name: "go", Key: "go-nofiles",
		Size: int64(b.Len()), RunUID: "u-x"}, &b); err != nil {
		t.Fatal(err)
	}
	if _, err := st.FinishCaches(ctx, "u-x", true); err != nil {
		t.Fatal(err)
	}
	ws := workspace(t, map[string]string{"src/Makefile": "all:\n"})
	r := cacheagent.Restore(ctx, client("main-clone"), goCache, ws, "main", wsfiles.DefaultUnpackLimits())
	if r[0].RestoredKey != "go-nofiles" {
		t.Fatalf("restore: %+v", r[0])
	}
	if got, _ := os.ReadFile(filepath.Join(ws, "src/Makefile")); string(got) != "all:\n" {
		t.Errorf("the entry changed the checkout: %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(ws, "home/go/pkg/mod/x")); string(got) != "ok\n" {
		t.Errorf("the cache's own directory: %q", got)
	}
	if _, err := os.Stat(filepath.Join(ws, ".flowci-restore")); !os.IsNotExist(err) {
		t.Errorf("the stage was left behind: %v", err)
	}
}
