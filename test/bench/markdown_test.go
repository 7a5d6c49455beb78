package bench

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// floorOf is the floor a cell is judged against: the null controller doing the same
// git work (floor-git) for the cells that read git, the one reading none (floor) for
// the stub source. Floors have none.
func (r *report) floorOf(c cell) *cellResult {
	want := "floor-git"
	switch c.Variant {
	case "floor", "floor-git":
		return nil
	case "stub":
		want = "floor"
	}
	for i := range r.Cells {
		if f := &r.Cells[i]; f.Variant == want && f.Shape == c.Shape && f.Runs == c.Runs {
			return f
		}
	}
	return nil
}

func isFloor(v string) bool { return v == "floor" || v == "floor-git" }

func (r *report) markdown(w io.Writer) {
	fmt.Fprintf(w, "\n### flow-ci controller benchmark (envtest, %d CPUs, %s, scale %.2f, %d repetitions: median [min–max])\n\n", r.CPUs, r.GoVersion, r.Scale, r.Reps)
	if len(r.Sweep) > 0 {
		fmt.Fprintln(w, "Plain-client floor (Job create + status update, no watch):")
		fmt.Fprintln(w, "\n| loops | ops | ops/min | p50 ms | p99 ms |\n|---:|---:|---:|---:|---:|")
		for _, s := range r.Sweep {
			fmt.Fprintf(w, "| %d | %d | %.0f | %.1f | %.1f |\n", s.Loops, s.Ops, s.PerMinute, s.P50Millis, s.P99Millis)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "| scenario | variant | ok | handoffs/min | P1 p50 ms | P1 p99 ms | p99 ÷ floor | rate ÷ floor | clone→step0 p50 ms | writes/step | writes/run (budget) | 409s | CPU s api/etcd/test/git | CPU ÷ 2 cores | queue wait mean/p99 ms | reconcile mean/p99 ms | completer p50 ms / max queue |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, c := range r.Cells {
		rate, rlo, rhi := c.stat(func(x rep) float64 { return x.HandoffsPerMin })
		p50, _, _ := c.stat(func(x rep) float64 { return x.P1.P50 })
		p99, plo, phi := c.stat(func(x rep) float64 { return x.P1.P99 })
		ratio, rateRatio := "–", "–"
		if f := r.floorOf(c.cell); f != nil {
			fp99, _, _ := f.stat(func(x rep) float64 { return x.P1.P99 })
			frate, _, _ := f.stat(func(x rep) float64 { return x.HandoffsPerMin })
			if fp99 > 0 && frate > 0 {
				ratio, rateRatio = fmt.Sprintf("%.1fx", p99/fp99), fmt.Sprintf("%.0f%%", 100*rate/frate)
			}
		}
		ok, _, _ := c.stat(func(x rep) float64 { return float64(x.Succeeded) })
		c0, _, _ := c.stat(func(x rep) float64 { return x.CloneToStep0.P50 })
		wps, _, _ := c.stat(func(x rep) float64 { return x.WritesPerStep })
		wpr, _, _ := c.stat(func(x rep) float64 { return x.WritesPerRun })
		conf, _, _ := c.stat(func(x rep) float64 { return float64(x.Conflicts) })
		api, _, _ := c.stat(func(x rep) float64 { return x.CPU.APIServer })
		etcd, _, _ := c.stat(func(x rep) float64 { return x.CPU.Etcd })
		self, _, _ := c.stat(func(x rep) float64 { return x.CPU.Self })
		git, _, _ := c.stat(func(x rep) float64 { return x.CPU.Children })
		share, _, _ := c.stat(func(x rep) float64 { return x.CPUShare })
		qm, _, _ := c.stat(func(x rep) float64 { return x.Decomposition.QueueWaitMeanMs })
		qp, _, _ := c.stat(func(x rep) float64 { return x.Decomposition.QueueWaitP99Ms })
		wm, _, _ := c.stat(func(x rep) float64 { return x.Decomposition.ReconcileMeanMs })
		wp, _, _ := c.stat(func(x rep) float64 { return x.Decomposition.ReconcileP99Ms })
		cp, _, _ := c.stat(func(x rep) float64 { return x.Completer.P50 })
		cq, _, _ := c.stat(func(x rep) float64 { return float64(x.CompleterMax) })
		writes := fmt.Sprintf("%.2f", wps)
		perRun := fmt.Sprintf("%.1f (%d)", wpr, 2*c.Steps+8)
		if isFloor(c.Variant) {
			writes, perRun = "–", "–"
		}
		fmt.Fprintf(w, "| %s | %s | %.0f/%d | %.0f [%.0f–%.0f] | %.1f | %.1f [%.1f–%.1f] | %s | %s | %.1f | %s | %s | %.0f | %.1f/%.1f/%.1f/%.1f | %.0f%% | %.1f/%.0f | %.1f/%.0f | %.1f / %.0f |\n",
			c.Name, c.Variant, ok, c.Runs, rate, rlo, rhi, p50, p99, plo, phi, ratio, rateRatio, c0, writes, perRun, conf,
			api, etcd, self, git, 100*share, qm, qp, wm, wp, cp, cq)
	}
	fmt.Fprintln(w, "\nP1: the completer's watch seeing step i's Job minus its update adding SuccessCriteriaMet to step i−1's Job (the earliest sign of its success); the floor is the null controller at the same load, through the same completer: floor-git for the cells that read git (it resolves each run's branch and reads its pipeline file as any correct controller must), floor for the stub source (neither reads git). CPU ÷ 2 cores near 100% means the cell measures contention for this machine's 2 cores.")
	for _, c := range r.Cells {
		if !isShipped(c.Variant) || len(c.Reps) == 0 {
			continue
		}
		x := c.Reps[len(c.Reps)-1]
		fmt.Fprintf(w, "\nShipped defaults (%s), %s, last repetition: %d writes for the runs (%.1f per run, history deletes included); apart: %d Lease writes (%.1f a second), %d of the triggers' own (status, run creations), %d records of a posted commit status (%.1f per run, the reporter's annotation on the run); %d commit statuses posted.\n",
			c.Variant, c.Name, x.Writes, x.WritesPerRun, x.LeaseWrites, float64(x.LeaseWrites)/x.WallSeconds, x.TriggerWrites, x.RecordWrites, float64(x.RecordWrites)/float64(c.Runs), x.ForgePosts)
		if x.Archive != nil {
			r.archiveNote(w, c, x)
		}
	}
	for _, c := range r.Cells {
		if len(c.Reps) > 0 && !isFloor(c.Variant) {
			fmt.Fprintf(w, "\nRequests of %s (%s), last repetition: %s\n", c.Name, c.Variant, formatCounts(c.Reps[len(c.Reps)-1].ByResource))
		}
	}
	r.goals(w)
	if len(r.Memory) > 0 {
		fmt.Fprintln(w, "\nP4 memory: the manager binary in its own process, cluster-wide, with finished runs (each with its clone Job, four step Jobs and their pods) in the cluster.")
		fmt.Fprintln(w, "\n| finished runs | Jobs and pods | reconciles at start | quiet after s | VmRSS quiet MiB | VmRSS settled MiB | VmHWM MiB |\n|---:|---:|---:|---:|---:|---:|---:|")
		for _, m := range r.Memory {
			fmt.Fprintf(w, "| %d | %d | %.0f | %.1f | %.1f | %.1f | %.1f |\n", m.FinishedRuns, m.Jobs, m.Reconciles, m.SettleSeconds, m.QuietRSSMB, m.RSSMB, m.PeakRSSMB)
		}
		for _, m := range r.Memory {
			fmt.Fprintf(w, "\nAt %d runs: %s. Heap profile %s; inuse_space top:\n\n```\n%s\n```\n", m.FinishedRuns, m.MemStats, m.HeapProfile, strings.Join(m.HeapTop, "\n"))
		}
	}
}

// goals states each of the goals against the measured medians.
func (r *report) goals(w io.Writer) {
	fmt.Fprintln(w, "\n| goal | cell | measured | target | met |\n|---|---|---:|---:|---|")
	for _, c := range r.Cells {
		f := r.floorOf(c.cell)
		if (c.Variant != "operator" && c.Variant != "stub") || f == nil {
			continue
		}
		p99, _, _ := c.stat(func(x rep) float64 { return x.P1.P99 })
		fp99, _, _ := f.stat(func(x rep) float64 { return x.P1.P99 })
		rate, _, _ := c.stat(func(x rep) float64 { return x.HandoffsPerMin })
		frate, _, _ := f.stat(func(x rep) float64 { return x.HandoffsPerMin })
		wpr, _, _ := c.stat(func(x rep) float64 { return x.WritesPerRun })
		yes := func(b bool) string { return map[bool]string{true: "yes", false: "no"}[b] }
		name := c.Name
		if c.Variant == "stub" {
			name += ", stub source"
		}
		fmt.Fprintf(w, "| P1 handoff p99 | %s | %.0f ms | ≤ %.0f ms (3× %s) | %s |\n", name, p99, 3*fp99, f.Variant, yes(p99 <= 3*fp99))
		fmt.Fprintf(w, "| P2 handoffs/min | %s | %.0f | ≥ %.0f (60%% of %s) | %s |\n", name, rate, 0.6*frate, f.Variant, yes(rate >= 0.6*frate))
		if c.Variant == "operator" {
			fmt.Fprintf(w, "| P3 writes per run | %s | %.1f | ≤ %d | %s |\n", name, wpr, 2*c.Steps+8, yes(wpr <= float64(2*c.Steps+8)))
		}
		// A floor slower than the operator is no floor.
		fmt.Fprintf(w, "| floor below the operator | %s | %s p99 %.0f ms | < %.0f ms | %s |\n", name, f.Variant, fp99, p99, yes(fp99 < p99))
	}
	for _, c := range r.Cells {
		if isShipped(c.Variant) {
			wpr, _, _ := c.stat(func(x rep) float64 { return x.WritesPerRun })
			rec, _, _ := c.stat(func(x rep) float64 { return float64(x.RecordWrites) / float64(c.Runs) })
			budget := float64(2*c.Steps + 8)
			met := func(v float64) string { return map[bool]string{true: "yes", false: "no"}[v <= budget] }
			fmt.Fprintf(w, "| P3 writes per run, %s (the commit status record apart) | %s | %.1f | ≤ %.0f | %s |\n", c.Variant, c.Name, wpr, budget, met(wpr))
			fmt.Fprintf(w, "| P3 writes per run, %s, with the record | %s | %.1f | ≤ %.0f | %s |\n", c.Variant, c.Name, wpr+rec, budget, met(wpr+rec))
		}
	}
	r.memoryGoals(w)
}

// memoryGoals judges P4 at 1,000 runs (steady RSS and the start-up peak), and whether
// memory grows no more than linearly beyond: the cost per run from 1,000 to 5,000 runs
// at most that from none to 1,000 (10% for noise).
func (r *report) memoryGoals(w io.Writer) {
	yes := func(b bool) string { return map[bool]string{true: "yes", false: "no"}[b] }
	at := map[int]memory{}
	for _, m := range r.Memory {
		at[m.FinishedRuns] = m
	}
	if m, ok := at[1000]; ok {
		fmt.Fprintf(w, "| P4 steady RSS | 1,000 runs, 5,000 Jobs and pods | %.0f MiB | ≤ 100 MiB | %s |\n", m.RSSMB, yes(m.RSSMB <= 100))
		fmt.Fprintf(w, "| P4 peak (VmHWM) | 1,000 runs, 5,000 Jobs and pods | %.0f MiB | ≤ 160 MiB | %s |\n", m.PeakRSSMB, yes(m.PeakRSSMB <= 160))
	}
	zero, ok0 := at[0]
	one, ok1 := at[1000]
	five, ok5 := at[5000]
	if !ok0 || !ok1 || !ok5 {
		return
	}
	for _, f := range []struct {
		name string
		v    func(memory) float64
	}{{"RSS", func(m memory) float64 { return m.RSSMB }}, {"VmHWM", func(m memory) float64 { return m.PeakRSSMB }}} {
		first, then := (f.v(one)-f.v(zero))/1000*1024, (f.v(five)-f.v(one))/4000*1024
		fmt.Fprintf(w, "| P4 %s per run, 1,000 → 5,000 | 5,000 runs, 25,000 Jobs and pods | %.1f KiB | ≤ %.1f KiB (0 → 1,000, +10%%) | %s |\n",
			f.name, then, 1.1*first, yes(then <= 1.1*first))
	}
}

// archiveNote says what the archive did beside the operator in c (x its last
// repetition), and sets c's medians beside those of the shipped cell of the same name:
// the archive's cost to the operator is the difference.
func (r *report) archiveNote(w io.Writer, c cellResult, x rep) {
	refused := map[string]int64{} // 409: a stale write, or one already done
	for k, v := range x.ByResource {
		if strings.HasPrefix(k, "409 ") {
			refused[k] = v
		}
	}
	text := "none"
	if len(refused) > 0 {
		text = formatCounts(refused)
	}
	fmt.Fprintf(w, "The archive beside it (its own requests not counted), over the cell: %s; %.1f CPU s (the operator's %.1f); the operator's refused writes: %s.\n",
		archiveSummary(x.Archive), x.CPU.Archive, x.CPU.Operator, text)
	p99, _, _ := c.stat(func(x rep) float64 { return x.P1.P99 })
	wpr, _, _ := c.stat(func(x rep) float64 { return x.WritesPerRun })
	for _, b := range r.Cells {
		if b.Variant == "shipped" && b.Name == c.Name && len(b.Reps) > 0 {
			bp99, _, _ := b.stat(func(x rep) float64 { return x.P1.P99 })
			bwpr, _, _ := b.stat(func(x rep) float64 { return x.WritesPerRun })
			fmt.Fprintf(w, "Medians with the archive against shipped without it: P1 p99 %.1f against %.1f ms, writes per run %.1f against %.1f.\n", p99, bp99, wpr, bwpr)
		}
	}
}

func formatCounts(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
