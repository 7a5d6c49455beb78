package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
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
	// What ships: the binary with config/manager's flags, runs from triggers that
	// report. First, while the cluster holds no other cell's runs: it watches them all.
	out = append(out, cell{Name: "100 × 5", Shape: "seq5", Runs: n(100), Steps: 5, Variant: "shipped"})
	// The same with the run archive beside it (its own process, uncounted): what the
	// archive costs the operator shows against the row above.
	out = append(out, cell{Name: "100 × 5", Shape: "seq5", Runs: n(100), Steps: 5, Variant: "shipped+archive"})
	for _, s := range []struct {
		name, shape string
		runs, steps int
	}{{"100 × 5", "seq5", 100, 5}, {"500 × 2", "seq2", 500, 2}, {"100 × 1→4→1", "par141", 100, 6}} {
		for _, v := range []string{"floor-git", "operator", "floor", "stub"} {
			out = append(out, cell{Name: s.name, Shape: s.shape, Runs: n(s.runs), Steps: s.steps, Variant: v})
		}
	}
	// The default of --max-concurrent-reconciles comes from this sweep.
	for _, w := range []int{4, 8, 16, 32} {
		out = append(out, cell{Name: fmt.Sprintf("100 × 5, %d workers", w), Shape: "seq5", Runs: n(100), Steps: 5, Variant: "workers", Workers: w})
	}
	return out
}

const repetitions = 3

// Knobs for iterating on one part: FLOWCI_BENCH_VARIANTS=operator,floor-git keeps only
// those variants, FLOWCI_BENCH_REPS=1 repeats less, FLOWCI_BENCH_MEMORY=0 skips P4.
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
// then the operator's memory (last: its history would load the cluster-wide cells), and
// prints Markdown tables (JSON in bin/bench). Run it with -benchtime 1x.
func BenchmarkController(b *testing.B) {
	scale := benchScale()
	git := newGitServer(b)
	for range b.N {
		out := newReport(scale, benchReps())
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
		if os.Getenv("FLOWCI_BENCH_MEMORY") != "0" {
			out.Memory = measureMemory(b, historyLevels, 30*time.Second)
		}
		out.markdown(os.Stdout)
		path, err := out.writeJSON()
		if err != nil {
			b.Fatal(err)
		}
		fmt.Println("\nJSON:", path)
	}
}

// TestBenchSmoke drives the harness end to end at a small size, in every `go test`:
// each variant, the shipped binary with triggers and a forge, and P4. It checks that
// runs succeed and numbers come out, never how fast.
func TestBenchSmoke(t *testing.T) {
	git := newGitServer(t)
	out := newReport(1, 1)
	// The shipped binary first: it watches every namespace, and would count its
	// re-stamping of the floor's runs (which carry no observedGeneration) as its own.
	cells := []cell{{Name: "5 × 3", Shape: "seq3", Runs: 5, Steps: 3, Variant: "shipped"},
		{Name: "5 × 3", Shape: "seq3", Runs: 5, Steps: 3, Variant: "shipped+archive"},
		{Name: "3 × 1→4→1", Shape: "par141", Runs: 3, Steps: 6, Variant: "floor-git"},
		{Name: "3 × 1→4→1", Shape: "par141", Runs: 3, Steps: 6, Variant: "operator"}}
	for _, v := range []string{"floor-git", "operator", "floor", "stub"} {
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
		if !isFloor(v) && (r.Writes == 0 || r.WritesPerRun == 0 || r.CPU.total() <= 0) {
			t.Errorf("%s: numbers not computed: %+v", v, r)
		}
		// Each trigger's run reports pending and then success, and its branch, at
		// its history limit, loses its oldest run.
		if isShipped(v) && (r.ForgePosts < int64(2*c.Runs) || r.ByResource["DELETE pipelineruns"] < int64(c.Runs) || r.CPU.Operator <= 0) {
			t.Errorf("%s: %d commit statuses posted, %d history deletes, %.1f CPU s of the manager: %s",
				v, r.ForgePosts, r.ByResource["DELETE pipelineruns"], r.CPU.Operator, formatCounts(r.ByResource))
		}
		// The archive beside it recorded and let go of each run, as in a cluster.
		if v == "shipped+archive" && (r.Archive["flowci_archive_records_total"] < float64(c.Runs) || r.Archive["flowci_archive_released_total"] < float64(c.Runs)) {
			t.Errorf("%s: the archive did not record and release every run: %s", v, archiveSummary(r.Archive))
		}
		out.Cells = append(out.Cells, cellResult{cell: c, Reps: []rep{r}})
	}
	// P4 at a small size: it fails the test when it cannot measure.
	out.Memory = measureMemory(t, []int{20}, time.Second)
	var b strings.Builder
	out.markdown(&b)
	t.Log(b.String())
}
