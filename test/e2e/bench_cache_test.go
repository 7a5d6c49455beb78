//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gittest"
)

// P6 is a small web service on a real framework (echo, with its eight dependencies),
// its test and its build. The go image has no C toolchain, so its test runs without
// -race (which needs cgo).
var p6Files = map[string]string{
	"go.mod": "module example.com/p6\n\ngo 1.26\n\nrequire github.com/labstack/echo/v4 v4.16.5\n",
	"main.go": `package main

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

func newServer() *echo.Echo {
	e := echo.New()
	e.GET("/hello/:name", func(c echo.Context) error { return c.String(http.StatusOK, "hello "+c.Param("name")) })
	return e
}

func main() { _ = newServer().Start(":8080") }
`,
	"main_test.go": `package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestHello(t *testing.T) {
	rec := httptest.NewRecorder()
	newServer().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/hello/ci", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "hello ci" {
		t.Fatalf("%d %q", rec.Code, rec.Body.String())
	}
}
`,
}

// p6Steps are the three steps, as flow-ci runs them and as the hand-driven Jobs do.
var p6Steps = [][]string{{"go mod download"}, {"go test ./..."}, {"go build -o bin/app ."}}

// BenchmarkClusterGoCache (P6): the same three steps (download, test, build) of a Go
// service with real dependencies, fetched from a module proxy on this machine. flow-ci
// runs them twice from a trigger with cacheWrite (the second run restores the go cache
// the first saved) against the least a correct system must do: the steps as three Jobs
// by hand on one volume, cold, with no clone Job and no status. It prints the ratios and
// never fails on speed.
func BenchmarkClusterGoCache(b *testing.B) {
	files, proxy := p6Module(b)
	for range b.N {
		hand := p6ByHand(b, proxy)
		cold, warm := p6FlowCI(b, files, proxy)
		b.ReportMetric(hand.Seconds(), "hand-s")
		b.ReportMetric(cold.Seconds(), "first-s")
		b.ReportMetric(warm.Seconds(), "second-s")
		b.Logf("P6: by hand %s; flow-ci first run %s (%.2f×), second run %s (%.2f×)", hand.Round(time.Second),
			cold.Round(time.Second), cold.Seconds()/hand.Seconds(), warm.Round(time.Second), warm.Seconds()/hand.Seconds())
	}
}

// p6Module makes go.sum with this machine's go (which reaches the module proxy) and
// serves its module cache's downloads, the GOPROXY protocol's layout, and the source
// as a tarball, where pods reach them; it returns the repository's files and the
// proxy's URL.
func p6Module(b *testing.B) (map[string]string, string) {
	dir := b.TempDir()
	for name, body := range p6Files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	// tidy writes go.sum; download leaves each module's .info, which the proxy serves.
	for _, args := range [][]string{{"mod", "tidy"}, {"mod", "download", "all"}} {
		cmd := exec.Command("go", args...)
		cmd.Dir, cmd.Env = dir, append(os.Environ(), "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	files := map[string]string{}
	for _, name := range []string{"go.mod", "go.sum", "main.go", "main_test.go"} {
		body, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			b.Fatal(err)
		}
		files[name] = string(body)
	}
	modcache, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/proxy/", http.StripPrefix("/proxy", http.FileServer(http.Dir(filepath.Join(strings.TrimSpace(string(modcache)), "cache", "download")))))
	src := sourceTar(b, files)
	mux.HandleFunc("/src.tar", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(src) })
	ln, err := net.Listen("tcp", net.JoinHostPort(gitHost, "0"))
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	return files, "http://" + ln.Addr().String()
}

func sourceTar(b *testing.B, files map[string]string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			b.Fatal(err)
		}
		_, _ = tw.Write([]byte(body))
	}
	_ = tw.Close()
	return buf.Bytes()
}

// p6Env is the steps' environment: the proxy on this machine, no checksum database
// (go.sum holds every hash), no cgo.
func p6Env(proxy string) map[string]string {
	return map[string]string{"GOPROXY": proxy + "/proxy", "GOSUMDB": "off", "GOFLAGS": "-mod=readonly", "CGO_ENABLED": "0"}
}

// p6FlowCI runs the pipeline twice from a trigger with cacheWrite and returns each run's
// time from its creation to its end (the saving step included).
func p6FlowCI(b *testing.B, files map[string]string, proxy string) (cold, warm time.Duration) {
	ctx := context.Background()
	ns := benchNamespace(b)
	var env strings.Builder
	for k, v := range p6Env(proxy) {
		fmt.Fprintf(&env, "  %s: %q\n", k, v)
	}
	var steps strings.Builder
	for i, cmds := range p6Steps {
		fmt.Fprintf(&steps, "- name: step%d\n  commands: [%q]\n", i, cmds[0])
	}
	pipeline := "name: P6\nimage: localhost/go:local\nenv:\n" + env.String() + "caches: [{name: go, preset: go}]\nsteps:\n" + steps.String()
	all := map[string]string{"build/flow-ci.yaml": pipeline}
	for k, v := range files {
		all[k] = v
	}
	root := b.TempDir()
	repo := gittest.NewRepoIn(b, root, "p6.git", all)
	srv := gittest.NewHTTPServer(b, root, gittest.HTTPOptions{Addr: net.JoinHostPort(gitHost, "0")})
	tr := &civ1alpha1.PipelineTrigger{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p6"}, Spec: civ1alpha1.PipelineTriggerSpec{
		RepoURL: srv.RepoURL(repo), Branches: []string{"main"}, Interval: &metav1.Duration{Duration: 10 * time.Second}, CacheWrite: true}}
	if err := k8s.Create(ctx, tr); err != nil {
		b.Fatal(err)
	}
	cold = p6RunTime(b, ns, repo.RevParse(b, "main"))
	warm = p6RunTime(b, ns, repo.CommitOn(b, "main", map[string]string{"README.md": "again\n"}))
	return cold, warm
}

func p6RunTime(b *testing.B, ns, commit string) time.Duration {
	deadline := time.Now().Add(15 * time.Minute)
	for time.Now().Before(deadline) {
		list := &civ1alpha1.PipelineRunList{}
		if err := k8s.List(context.Background(), list, client.InNamespace(ns), client.MatchingLabels{civ1alpha1.LabelCommit: commit}); err != nil {
			b.Fatal(err)
		}
		if len(list.Items) == 1 && list.Items[0].Status.Phase.IsFinished() {
			run := list.Items[0]
			if run.Status.Phase != civ1alpha1.PhaseSucceeded {
				b.Fatalf("run %s: %s", run.Name, toJSON(run.Status))
			}
			b.Logf("run %s: caches %s", run.Name, toJSON(run.Status.Caches))
			return run.Status.CompletionTime.Sub(run.CreationTimestamp.Time)
		}
		time.Sleep(time.Second)
	}
	b.Fatalf("no run of %s ended", commit)
	return 0
}
