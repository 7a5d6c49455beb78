package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/pipeline"
	"github.com/flow-ci/flow-ci/internal/render"
)

const (
	historyRuns = 1000
	historyJobs = 5000
	jobsPerRun  = 5 // of directly created history
)

// measureMemory (P4) fills the cluster up to historyRuns finished runs and historyJobs
// Jobs, then starts a cluster-wide manager, lets its cache sync and its first pass over
// every run end, and reads the process's memory.
func measureMemory(tb testing.TB, git *gitServer) *memory {
	tb.Helper()
	ctx := context.Background()
	runs := &civ1alpha1.PipelineRunList{}
	if err := k8sClient.List(ctx, runs); err != nil {
		tb.Fatal(err)
	}
	jobs := &metav1.PartialObjectMetadataList{}
	jobs.SetGroupVersionKind(batchv1.SchemeGroupVersion.WithKind("JobList"))
	if err := k8sClient.List(ctx, jobs); err != nil {
		tb.Fatal(err)
	}
	m := &memory{Jobs: len(jobs.Items)}
	var done *civ1alpha1.PipelineRun
	for i := range runs.Items {
		if runs.Items[i].Status.Phase == civ1alpha1.PhaseSucceeded {
			m.FinishedRuns++
			done = &runs.Items[i]
		}
	}
	if done == nil {
		tb.Fatal("memory: no succeeded run to copy history from")
	}
	missingJobs := max(0, historyJobs-m.Jobs)
	n := max(historyRuns-m.FinishedRuns, (missingJobs+jobsPerRun-1)/jobsPerRun)
	if n > 0 {
		createHistory(tb, git, done, n, missingJobs)
		m.HistoryCreated, m.FinishedRuns, m.Jobs = n, m.FinishedRuns+n, m.Jobs+missingJobs
	}

	m.HeapInuseBeforeMB = heapInuseMiB()
	counts := &apiCounts{}
	start := time.Now()
	mgr, stop := startManager(tb, counts, 16)
	waitQuiet(counts, 2*time.Second, 3*time.Minute)
	m.SettleSeconds = time.Since(start).Seconds() - 2
	// Listing from the cache blocks until its informer synced: proof of what it holds.
	cached := &civ1alpha1.PipelineRunList{}
	cachedJobs := &batchv1.JobList{}
	if err := mgr.GetCache().List(ctx, cached); err != nil {
		tb.Fatal(err)
	}
	if err := mgr.GetCache().List(ctx, cachedJobs); err != nil {
		tb.Fatal(err)
	}
	m.CachedRuns, m.CachedJobs = len(cached.Items), len(cachedJobs.Items)
	cached, cachedJobs = nil, nil
	m.HeapInuseMB = heapInuseMiB()
	m.RSSMB, m.PeakRSSMB = procStatusMiB(tb, "VmRSS"), procStatusMiB(tb, "VmHWM")
	stop()
	m.Note = "Process memory is this test process: the operator's manager and cache plus the harness's clients, git server handler and completer; kube-apiserver and etcd are separate processes and not counted. VmHWM is the peak of the whole benchmark, not of P4 alone. Directly created history Jobs carry the run-UID label but no status."
	return m
}

// createHistory creates n finished runs in a fresh namespace, copying done's status,
// and jobs step Jobs spread over them, labelled so the operator's cache holds them.
func createHistory(tb testing.TB, git *gitServer, done *civ1alpha1.PipelineRun, n, jobs int) {
	tb.Helper()
	ctx := context.Background()
	def, err := pipeline.Parse([]byte(pipelineYAML(jobsPerRun)))
	if err != nil {
		tb.Fatal(err)
	}
	ns := newNamespace(tb, "bench-history")
	cfg := render.Config{DefaultStepImage: "busybox:bench", CloneImage: "flow-ci:bench"}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				if err := createFinishedRun(ctx, ns, i, git.repoURL(jobsPerRun), done, &def.Pipeline, min(jobsPerRun, max(0, jobs-i*jobsPerRun)), cfg); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatalf("history: %v", err)
	}
}

func createFinishedRun(ctx context.Context, ns string, i int, url string, done *civ1alpha1.PipelineRun, p *pipeline.Pipeline, jobs int, cfg render.Config) error {
	run := &civ1alpha1.PipelineRun{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("history-%04d", i)},
		Spec:       civ1alpha1.PipelineRunSpec{RepoURL: url},
	}
	if err := k8sClient.Create(ctx, run); err != nil {
		return err
	}
	run.Status = *done.Status.DeepCopy()
	if err := k8sClient.Status().Update(ctx, run); err != nil {
		return fmt.Errorf("finishing %s: %w", run.Name, err)
	}
	for s := range jobs {
		job, err := render.RenderStepJob(run, p, s, benchNode, cfg)
		if err != nil {
			return err
		}
		if err := k8sClient.Create(ctx, job); err != nil {
			return err
		}
	}
	return nil
}

// waitQuiet waits until the operator sent no request for quiet (its first pass over
// every cached run is over), or at most limit.
func waitQuiet(c *apiCounts, quiet, limit time.Duration) {
	total := func() int64 { return c.writes.Load() + c.uncachedReads.Load() + c.informer.Load() }
	last, since, deadline := total(), time.Now(), time.Now().Add(limit)
	for time.Now().Before(deadline) && (last == 0 || time.Since(since) < quiet) {
		time.Sleep(200 * time.Millisecond)
		if t := total(); t != last {
			last, since = t, time.Now()
		}
	}
}

func heapInuseMiB() float64 {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapInuse) / (1 << 20)
}

// procStatusMiB reads a "kB" field of /proc/self/status.
func procStatusMiB(tb testing.TB, field string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Logf("reading /proc/self/status: %v", err)
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
