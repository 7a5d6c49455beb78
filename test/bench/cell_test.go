package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/internal/runstate"
)

// runCell pushes the cell's runs into a fresh namespace, driven by a fresh manager (in
// this process, or the shipped binary in its own, with the archive beside it for
// shipped+archive) or the null controller, and measures them.
func runCell(tb testing.TB, git *gitServer, c cell) rep {
	tb.Helper()
	ns := newNamespace(tb, fmt.Sprintf("bench-%s-%d", strings.ReplaceAll(c.Variant, "+", "-"), c.Runs))
	counts := &apiCounts{}
	var stop func()
	var sc *shippedCell
	var cpu0 cpuSample
	var m0 histSums
	var start time.Time
	var r rep
	comp, stopCompleter := startCompleter(tb, ns, 8)
	switch c.Variant {
	case "shipped", "shipped+archive":
		// Its runs come from triggers, once the manager binary leads.
		sc = runShippedCell(tb, git, c, counts, ns)
		start, stop = sc.start, sc.stop
		cpu0, m0 = sampleCPU(), sampleMetrics()
	case "floor", "floor-git":
		_, stop = startNullController(tb, ns, shapeOf(c.Shape), c.Variant == "floor-git")
	default:
		mgr, stopMgr := startManager(tb, counts, c.Variant == "stub", c.Workers, ns)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			tb.Fatal("the manager's cache did not sync")
		}
		cancel()
		stop = stopMgr
	}
	if sc == nil {
		cpu0, m0, start = sampleCPU(), sampleMetrics(), time.Now()
		createRuns(tb, ns, c.Runs, func(i int) string { return git.repoURL(c.Shape, i) })
	}
	end, succeeded := waitRuns(tb, ns, c.Runs, 8*time.Minute)
	cpu, m := sampleCPU().sub(cpu0), sampleMetrics()
	if sc != nil {
		settleShipped(counts, sc.forge, c.Runs)
		r.Archive = sc.archiveMetrics(tb, c.Runs)
	}
	stop()
	stopCompleter() // an idle completer would still hold its Jobs

	r.Succeeded, r.WallSeconds, r.CPU, r.Decomposition = succeeded, end.Sub(start).Seconds(), cpu, decompose(m0, m)
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
	r.ByResource = counts.breakdown()
	if sc != nil {
		r.Writes, r.LeaseWrites, r.TriggerWrites, r.RecordWrites = shippedWrites(r.ByResource)
		r.ForgePosts = sc.forge.posts.Load()
	}
	r.WritesPerStep, r.WritesPerRun = float64(r.Writes)/float64(c.Runs*c.Steps), float64(r.Writes)/float64(c.Runs)
	return r
}

// handoffLatencies pairs each step Job with the last of the steps it waits for to meet
// its success criteria (in sh: the earliest signal of a Job's success a controller can
// see), and each root step with its run's clone Job; and gives the completer's own
// latency per Job.
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
			if !ok || prev.succeeded.IsZero() {
				last = time.Time{}
				break
			}
			if prev.succeeded.After(last) {
				last = prev.succeeded
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
// last SuccessCriteriaMet condition of the steps it waits for, per run (1 s resolution
// on both).
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
		if c.Type == batchv1.JobSuccessCriteriaMet {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}
