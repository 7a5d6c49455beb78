package gitsource

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flow-ci/flow-ci/internal/gittest"
)

var benchSizes = []int{10, 1000, 10000}

// benchRepos are built once per process, and only when a benchmark runs:
// plain `go test` never pays for the 10,000-file repository.
var benchRepos struct {
	once  sync.Once
	root  string
	repos map[int]*gittest.Repo
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchRepos.root != "" {
		_ = os.RemoveAll(benchRepos.root)
	}
	os.Exit(code)
}

func loadBenchRepos(b *testing.B) (string, map[int]*gittest.Repo) {
	b.Helper()
	benchRepos.once.Do(func() {
		start := time.Now()
		root, err := os.MkdirTemp("", "gitsource-bench-")
		if err != nil {
			b.Fatal(err)
		}
		benchRepos.root = root
		benchRepos.repos = map[int]*gittest.Repo{}
		for _, n := range benchSizes {
			files := map[string]string{pipelinePath: "steps:\n  - name: test\n    run: go test ./...\n"}
			for i := 1; i < n; i++ {
				files[fmt.Sprintf("src/pkg%03d/file%05d.go", i%100, i)] = fmt.Sprintf(
					"package pkg%03d\n\n// File %d.\nfunc F%d() int { return %d }\n%s\n", i%100, i, i, i*7, strings.Repeat("// filler line\n", 20))
			}
			benchRepos.repos[n] = gittest.NewRepoIn(b, root, fmt.Sprintf("files-%d.git", n), files)
		}
		b.Logf("built bench repositories in %v", time.Since(start))
	})
	if benchRepos.repos == nil {
		b.Fatal("bench repositories were not built")
	}
	return benchRepos.root, benchRepos.repos
}

// BenchmarkReadFile compares ReadFile with the git CLI doing the same
// shallow single-branch fetch, against the same local git http-backend.
// Both include server-side work; B/op also counts this process's HTTP
// server, which the git-cli rows isolate.
func BenchmarkReadFile(b *testing.B) {
	root, repos := loadBenchRepos(b)
	srv := gittest.NewHTTPServer(b, root, gittest.HTTPOptions{})
	ctx := context.Background()

	for _, n := range benchSizes {
		r := repos[n]
		url := srv.RepoURL(r)
		commit := r.RevParse(b, "main")

		b.Run(fmt.Sprintf("go-git/files=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			var peak uint64
			for i := 0; i < b.N; i++ {
				p := peakHeapDuring(func() {
					if _, err := ReadFile(ctx, url, commit, pipelinePath, maxPipelineFile, nil, loopback); err != nil {
						b.Fatal(err)
					}
				})
				peak = max(peak, p)
			}
			b.ReportMetric(float64(peak), "peak-heap-B")
		})

		b.Run(fmt.Sprintf("git-cli/files=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			var peakRSS int64
			tmp := b.TempDir()
			for i := 0; i < b.N; i++ {
				dir := filepath.Join(tmp, fmt.Sprint(i))
				_, rss := runGit(b, "clone", "--quiet", "--depth", "1", "--single-branch",
					"--no-tags", "--branch", "main", url, dir)
				out, rss2 := runGit(b, "-C", dir, "show", "HEAD:"+pipelinePath)
				if len(out) == 0 {
					b.Fatal("git show printed nothing")
				}
				peakRSS = max(peakRSS, rss, rss2)
				b.StopTimer()
				_ = os.RemoveAll(dir)
				b.StartTimer()
			}
			b.ReportMetric(float64(peakRSS), "peak-rss-B")
		})
	}
}

// gnuTime is GNU time, if installed. Maxrss from cmd.ProcessState is
// useless for a child of this process: Go starts children with vfork, and
// Linux records the parent's RSS high-water mark into the child's maxrss at
// exec, so even `git --version` would report the test binary's RSS. GNU
// time forks git itself, so its figure is git's own.
var gnuTime, _ = exec.LookPath("/usr/bin/time")

// runGit runs git and returns its stdout and peak RSS in bytes: the largest
// of the process and the children it waited for (remote-http, index-pack).
func runGit(b *testing.B, args ...string) ([]byte, int64) {
	b.Helper()
	var cmd *exec.Cmd
	rssFile := filepath.Join(b.TempDir(), "rss")
	if gnuTime != "" {
		cmd = exec.Command(gnuTime, append([]string{"-f", "%M", "-o", rssFile, "git"}, args...)...)
	} else {
		cmd = exec.Command("git", args...)
	}
	cmd.Env = gittest.Env()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	kib := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // upper bound, see gnuTime
	if gnuTime != "" {
		data, err := os.ReadFile(rssFile)
		if err != nil {
			b.Fatalf("read rss: %v", err)
		}
		if kib, err = strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64); err != nil {
			b.Fatalf("parse rss %q: %v", data, err)
		}
	}
	return out, kib * 1024
}

// peakHeapDuring runs f and returns the highest heap growth over the
// baseline seen while it ran, sampled every millisecond through
// runtime/metrics (which, unlike ReadMemStats, does not stop the world).
func peakHeapDuring(f func()) uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	base := read()
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if v := read(); v > base && v-base > peak.Load() {
				peak.Store(v - base)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	f()
	close(stop)
	<-done
	return peak.Load()
}
