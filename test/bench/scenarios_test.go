package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// scenario is a burst of runs pushed at once.
type scenario struct{ runs, steps int }

func (s scenario) String() string { return fmt.Sprintf("%d runs × %d steps", s.runs, s.steps) }

var scenarios = []scenario{{1, 5}, {100, 5}, {500, 2}}

var maxReconciles = []int{1, 4, 16}

// benchScale shrinks (or grows) the run counts: FLOWCI_BENCH_SCALE=0.2 runs a fifth.
func benchScale() float64 {
	if s, err := strconv.ParseFloat(os.Getenv("FLOWCI_BENCH_SCALE"), 64); err == nil && s > 0 {
		return s
	}
	return 1
}

// BenchmarkController runs every scenario at every MaxConcurrentReconciles, then the
// floor and the memory scenario, and prints a Markdown table. Run it with -benchtime 1x.
func BenchmarkController(b *testing.B) {
	scale := benchScale()
	git := newGitServer(b)
	for range b.N {
		rep := newReport(scale)
		rep.Floor = measureFloor(b, 200)
		for _, mcr := range maxReconciles {
			for _, sc := range scenarios {
				sc.runs = max(1, int(float64(sc.runs)*scale))
				res := runScenario(b, git, sc, mcr)
				b.Logf("%s at MCR %d: %d/%d succeeded in %.1f s", res.Name, mcr, res.Succeeded, res.Runs, res.WallSeconds)
				rep.Scenarios = append(rep.Scenarios, res)
			}
		}
		rep.Memory = measureMemory(b, git)
		rep.markdown(os.Stdout)
		path, err := rep.writeJSON()
		if err != nil {
			b.Fatal(err)
		}
		fmt.Println("\nJSON:", path)
	}
}

// TestBenchSmoke drives the harness end to end at a small size, in every `go test`.
// It checks that runs succeed and numbers come out, never how fast.
func TestBenchSmoke(t *testing.T) {
	res := runScenario(t, newGitServer(t), scenario{5, 3}, 4)
	if res.Succeeded != res.Runs {
		t.Fatalf("%d of %d runs succeeded", res.Succeeded, res.Runs)
	}
	if want := res.Runs * (res.Steps - 1); res.Handoffs != want || res.P1.N != want {
		t.Errorf("handoffs: got %d (P1 samples %d), want %d", res.Handoffs, res.P1.N, want)
	}
	if res.Writes == 0 || res.WritesPerStep == 0 || res.RunsPerMin == 0 || res.P1.P50 <= 0 {
		t.Errorf("numbers not computed: %+v", res)
	}
	rep := newReport(1)
	rep.Scenarios = []result{res}
	var b strings.Builder
	rep.markdown(&b)
	t.Log(b.String())
}

// runScenario pushes sc.runs runs of sc.steps steps into a fresh namespace, watched by a
// fresh manager, and measures them.
func runScenario(tb testing.TB, git *gitServer, sc scenario, mcr int) result {
	tb.Helper()
	url := git.repoURL(sc.steps)
	ns := newNamespace(tb, fmt.Sprintf("bench-%d-%d", sc.runs, mcr))
	comp, stopCompleter := startCompleter(tb, ns, 0, 4)
	counts := &apiCounts{}
	mgr, stop := startManager(tb, counts, mcr, ns)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		tb.Fatal("the manager's cache did not sync")
	}

	start := time.Now()
	createRuns(tb, ns, url, sc.runs)
	end, succeeded := waitRuns(tb, ns, sc.runs, 8*time.Minute)
	stop()
	// An idle completer would still hold its Jobs: keep it out of later scenarios and P4.
	stopCompleter()

	res := result{Name: sc.String(), MaxReconciles: mcr, Runs: sc.runs, Steps: sc.steps, Succeeded: succeeded}
	res.WallSeconds = end.Sub(start).Seconds()
	jobs, errs := comp.records()
	for _, err := range errs {
		tb.Errorf("completer: %v", err)
	}
	handoffs, clone := handoffLatencies(jobs)
	res.Handoffs = len(handoffs)
	res.P1, res.CloneToStep0 = quantilesOf(handoffs), quantilesOf(clone)
	minutes := res.WallSeconds / 60
	res.RunsPerMin, res.HandoffsPerMin = float64(succeeded)/minutes, float64(res.Handoffs)/minutes
	res.Writes, res.UncachedReads, res.InformerRequests = counts.writes.Load(), counts.uncachedReads.Load(), counts.informer.Load()
	res.Conflicts = counts.conflicts.Load()
	steps := float64(sc.runs * sc.steps)
	res.WritesPerStep, res.UncachedReadsPerStep = float64(res.Writes)/steps, float64(res.UncachedReads)/steps
	res.ByResource = counts.breakdown()
	return res
}

// handoffLatencies pairs each step Job i ≥ 1 with step i-1 of the same run, and each
// step 0 with its run's clone Job.
func handoffLatencies(jobs map[string]jobRecord) (steps, clone []time.Duration) {
	type key struct {
		run  string
		step int
	}
	byStep := map[key]jobRecord{}
	for _, j := range jobs {
		byStep[key{j.run, j.step}] = j
	}
	for k, j := range byStep {
		if k.step < 0 {
			continue
		}
		prev, ok := byStep[key{k.run, k.step - 1}]
		if !ok || prev.completed.IsZero() {
			continue
		}
		if k.step == 0 {
			clone = append(clone, j.observed.Sub(prev.completed))
		} else {
			steps = append(steps, j.observed.Sub(prev.completed))
		}
	}
	return steps, clone
}

// measureFloor times what one handoff cannot avoid: a Job create and a status update
// from a plain client.
func measureFloor(tb testing.TB, n int) floor {
	tb.Helper()
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ns := newNamespace(tb, "bench-floor")
	comp := &completer{cs: cs}
	var total, creates, statuses []time.Duration
	for i := range n {
		job := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("floor-%04d", i), Namespace: ns},
			Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "step", Image: "busybox:bench", Command: []string{"sh", "-c", "echo 0"}}},
			}}},
		}
		t0 := time.Now()
		created, err := cs.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
		if err != nil {
			tb.Fatalf("floor: %v", err)
		}
		t1 := time.Now()
		if err := comp.markComplete(ctx, created); err != nil {
			tb.Fatalf("floor: %v", err)
		}
		t2 := time.Now()
		total, creates, statuses = append(total, t2.Sub(t0)), append(creates, t1.Sub(t0)), append(statuses, t2.Sub(t1))
	}
	return floor{Iterations: n, P50Millis: quantilesOf(total).P50, CreateP50: quantilesOf(creates).P50, StatusP50: quantilesOf(statuses).P50}
}
