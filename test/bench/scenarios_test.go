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
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/internal/runstate"
)

// benchScale shrinks (or grows) the run counts: FLOWCI_BENCH_SCALE=0.2 runs a fifth.
func benchScale() float64 {
	if s, err := strconv.ParseFloat(os.Getenv("FLOWCI_BENCH_SCALE"), 64); err == nil && s > 0 {
		return s
	}
	return 1
}

// benchCells are the configurations make bench measures, each repeated.
func benchCells(scale float64) []cell {
	n := func(runs int) int { return max(1, int(float64(runs)*scale)) }
	var out []cell
	out = append(out, cell{Name: "1 × 5", Shape: "seq5", Runs: 1, Steps: 5, Variant: "operator"})
	for _, s := range []struct {
		name, shape string
		runs, steps int
	}{{"100 × 5", "seq5", 100, 5}, {"500 × 2", "seq2", 500, 2}, {"100 × 1→4→1", "par141", 100, 6}} {
		for _, v := range []string{"floor", "operator", "stub"} {
			out = append(out, cell{Name: s.name, Shape: s.shape, Runs: n(s.runs), Steps: s.steps, Variant: v})
		}
	}
	return out
}

const repetitions = 3

// Knobs for iterating on one part: FLOWCI_BENCH_VARIANTS=operator,floor keeps only those
// variants, FLOWCI_BENCH_REPS=1 repeats less, FLOWCI_BENCH_MEMORY=0 skips P4.
func benchReps() int {
	if n, err := strconv.Atoi(os.Getenv("FLOWCI_BENCH_REPS")); err == nil && n > 0 {
		return n
	}
	return repetitions
}

func keepVariant(v string) bool {
	only := os.Getenv("FLOWCI_BENCH_VARIANTS")
	return only == "" || strings.Contains(","+only+",", ","+v+",")
}

// BenchmarkController measures the plain-client floor, then every cell three times,
// then the operator's memory, and prints a Markdown table (JSON in bin/bench). Run it
// with -benchtime 1x.
func BenchmarkController(b *testing.B) {
	scale := benchScale()
	git := newGitServer(b)
	for range b.N {
		out := newReport(scale, benchReps())
		if os.Getenv("FLOWCI_BENCH_MEMORY") != "0" {
			out.Memory = measureMemory(b)
		}
		for _, loops := range []int{1, 4, 16, 64} {
			out.Sweep = append(out.Sweep, measureSweep(b, loops, 400))
		}
		for _, c := range benchCells(scale) {
			if !keepVariant(c.Variant) {
				continue
			}
			git.warm(c.Shape, c.Runs)
			res := cellResult{cell: c}
			for range benchReps() {
				r := runCell(b, git, c)
				b.Logf("%s %s: %d/%d succeeded in %.1f s, P1 p99 %.1f ms", c.Name, c.Variant, r.Succeeded, c.Runs, r.WallSeconds, r.P1.P99)
				res.Reps = append(res.Reps, r)
			}
			out.Cells = append(out.Cells, res)
		}
		out.markdown(os.Stdout)
		path, err := out.writeJSON()
		if err != nil {
			b.Fatal(err)
		}
		fmt.Println("\nJSON:", path)
	}
}

// TestBenchSmoke drives the harness end to end at a small size, in every `go test`.
// It checks that runs succeed and numbers come out, never how fast.
func TestBenchSmoke(t *testing.T) {
	git := newGitServer(t)
	out := newReport(1, 1)
	cells := []cell{{Name: "3 × 1→4→1", Shape: "par141", Runs: 3, Steps: 6, Variant: "floor"},
		{Name: "3 × 1→4→1", Shape: "par141", Runs: 3, Steps: 6, Variant: "operator"}}
	for _, v := range []string{"floor", "operator", "stub"} {
		cells = append(cells, cell{Name: "5 × 3", Shape: "seq3", Runs: 5, Steps: 3, Variant: v})
	}
	for _, c := range cells {
		v := c.Variant
		r := runCell(t, git, c)
		if r.Succeeded != c.Runs {
			t.Fatalf("%s: %d of %d runs succeeded", v, r.Succeeded, c.Runs)
		}
		// Every step but the root waits for another: one handoff each.
		if want := c.Runs * (c.Steps - 1); r.Handoffs != want || r.P1.N != want {
			t.Errorf("%s: handoffs: got %d (P1 samples %d), want %d", v, r.Handoffs, r.P1.N, want)
		}
		if v != "floor" && (r.Writes == 0 || r.WritesPerRun == 0 || r.CPU.total() <= 0) {
			t.Errorf("%s: numbers not computed: %+v", v, r)
		}
		out.Cells = append(out.Cells, cellResult{cell: c, Reps: []rep{r}})
	}
	var b strings.Builder
	out.markdown(&b)
	t.Log(b.String())
}

// runCell pushes the cell's runs into a fresh namespace, driven by a fresh manager (or
// the null controller), and measures them.
func runCell(tb testing.TB, git *gitServer, c cell) rep {
	tb.Helper()
	ns := newNamespace(tb, fmt.Sprintf("bench-%s-%d", c.Variant, c.Runs))
	comp, stopCompleter := startCompleter(tb, ns, 8)
	counts := &apiCounts{}
	var stop func()
	var null *nullController
	if c.Variant == "floor" {
		null, stop = startNullController(tb, ns, shapeOf(c.Shape), 4)
	} else {
		mgr, stopMgr := startManager(tb, counts, c.Variant == "stub", ns)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			tb.Fatal("the manager's cache did not sync")
		}
		cancel()
		stop = stopMgr
	}
	cpu0, m0, start := sampleCPU(), sampleMetrics(), time.Now()
	names := createRuns(tb, ns, c.Runs, func(i int) string { return git.repoURL(c.Shape, i) })
	if null != nil {
		for _, n := range names {
			null.started(n)
		}
	}
	end, succeeded := waitRuns(tb, ns, c.Runs, 8*time.Minute)
	cpu, m := sampleCPU().sub(cpu0), sampleMetrics()
	stop()
	stopCompleter() // an idle completer would still hold its Jobs

	r := rep{Succeeded: succeeded, WallSeconds: end.Sub(start).Seconds(), CPU: cpu, Decomposition: decompose(m0, m)}
	r.CPUShare = cpu.total() / (2 * r.WallSeconds)
	records, errs := comp.records()
	for _, err := range errs {
		tb.Errorf("completer: %v", err)
	}
	handoffs, clone, completer := handoffLatencies(records, shapeOf(c.Shape))
	r.Handoffs, r.P1, r.CloneToStep0, r.Completer = len(handoffs), quantilesOf(handoffs), quantilesOf(clone), quantilesOf(completer)
	r.CompleterMax = comp.maxQueue.Load()
	r.P1Objects = quantilesOf(objectHandoffs(tb, ns, shapeOf(c.Shape)))
	minutes := r.WallSeconds / 60
	r.RunsPerMin, r.HandoffsPerMin = float64(succeeded)/minutes, float64(r.Handoffs)/minutes
	r.Writes, r.Conflicts = counts.writes.Load(), counts.statusConflicts.Load()
	r.WritesPerStep, r.WritesPerRun = float64(r.Writes)/float64(c.Runs*c.Steps), float64(r.Writes)/float64(c.Runs)
	r.ByResource = counts.breakdown()
	return r
}

// handoffLatencies pairs each step Job with the last of the steps it waits for to
// complete (in sh), and each root step with its run's clone Job; and gives the
// completer's own latency per Job.
func handoffLatencies(jobs map[string]jobRecord, sh shape) (steps, clone, completer []time.Duration) {
	type key struct {
		run  string
		step int
	}
	byStep := map[key]jobRecord{}
	for _, j := range jobs {
		byStep[key{j.run, j.step}] = j
		if !j.completed.IsZero() {
			completer = append(completer, j.completed.Sub(j.observed))
		}
	}
	for k, j := range byStep {
		if k.step < 0 || k.step >= sh.steps() {
			continue
		}
		deps := sh.deps[k.step]
		if len(deps) == 0 {
			deps = []int{-1} // the clone
		}
		var last time.Time
		for _, d := range deps {
			prev, ok := byStep[key{k.run, d}]
			if !ok || prev.completed.IsZero() {
				last = time.Time{}
				break
			}
			if prev.completed.After(last) {
				last = prev.completed
			}
		}
		switch {
		case last.IsZero():
		case deps[0] < 0:
			clone = append(clone, j.observed.Sub(last))
		default:
			steps = append(steps, j.observed.Sub(last))
		}
	}
	return steps, clone, completer
}

// objectHandoffs is P1 from the Jobs' own timestamps: the next Job's creation minus the
// last Complete condition of the steps it waits for, per run (1 s resolution on both).
func objectHandoffs(tb testing.TB, ns string, sh shape) []time.Duration {
	jobs := &batchv1.JobList{}
	if err := k8sClient.List(context.Background(), jobs, client.InNamespace(ns)); err != nil {
		tb.Fatal(err)
	}
	type key struct {
		run  string
		step int
	}
	byStep := map[key]*batchv1.Job{}
	for i := range jobs.Items {
		j := &jobs.Items[i]
		step, err := strconv.Atoi(j.Labels["flowci.dev/step-index"])
		if err == nil {
			byStep[key{j.Labels["flowci.dev/pipelinerun"], step}] = j
		}
	}
	var out []time.Duration
	for k, j := range byStep {
		if k.step >= sh.steps() || len(sh.deps[k.step]) == 0 {
			continue
		}
		var last time.Time
		for _, d := range sh.deps[k.step] {
			done := completedAt(byStep[key{k.run, d}])
			if done.IsZero() {
				last = time.Time{}
				break
			}
			if done.After(last) {
				last = done
			}
		}
		if !last.IsZero() {
			out = append(out, j.CreationTimestamp.Sub(last))
		}
	}
	return out
}

func completedAt(j *batchv1.Job) time.Time {
	if j == nil || runstate.JobOutcome(j) != batchv1.JobComplete {
		return time.Time{}
	}
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobComplete {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}
