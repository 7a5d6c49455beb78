package bench

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"time"
)

type quantiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func quantilesOf(d []time.Duration) quantiles {
	if len(d) == 0 {
		return quantiles{}
	}
	slices.Sort(d)
	at := func(q float64) float64 {
		return float64(d[min(len(d)-1, int(q*float64(len(d))))].Microseconds()) / 1000
	}
	return quantiles{N: len(d), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: at(1)}
}

// cell is one configuration measured: a burst of runs of a shape, against the operator
// (real git), the operator with a stub source, or the null controller (the floors:
// floor-git reads git as the operator must, floor reads none).
type cell struct {
	Name    string `json:"name"`
	Shape   string `json:"shape"`
	Runs    int    `json:"runs"`
	Steps   int    `json:"stepsPerRun"`
	Variant string `json:"variant"`
	// Workers of the operator's PipelineRun controller; 0 is its default.
	Workers int `json:"workers,omitempty"`
}

// rep is one repetition of a cell.
type rep struct {
	Succeeded      int     `json:"succeeded"`
	WallSeconds    float64 `json:"wallSeconds"`
	RunsPerMin     float64 `json:"runsPerMinute"`
	HandoffsPerMin float64 `json:"handoffsPerMinute"`
	Handoffs       int     `json:"handoffs"`
	// P1: step i's Job seen by the completer's watch minus step i-1's Job marked Complete.
	P1           quantiles `json:"handoffMillis"`
	CloneToStep0 quantiles `json:"cloneToStep0Millis"`
	// P1 again from the objects' own timestamps: the next Job's creationTimestamp minus
	// the Complete condition's lastTransitionTime (both have 1 s resolution).
	P1Objects quantiles `json:"handoffFromTimestampsMillis"`
	// The completer's own latency (seen → Complete written) and deepest queue.
	Completer    quantiles `json:"completerMillis"`
	CompleterMax int64     `json:"completerMaxQueue"`
	// P3, everything the operator wrote (the floor's writes are not counted).
	Writes        int64            `json:"writes"`
	WritesPerStep float64          `json:"writesPerStep"`
	WritesPerRun  float64          `json:"writesPerRun"`
	Conflicts     int64            `json:"statusConflicts"`
	ByResource    map[string]int64 `json:"requestsByResource"`
	// The shipped cell's writes that P3 lists apart: the leader election Lease's, and
	// the trigger's own (its status, the runs it creates); and the commit statuses
	// posted to the forge.
	LeaseWrites   int64         `json:"leaseWrites,omitempty"`
	TriggerWrites int64         `json:"triggerWrites,omitempty"`
	RecordWrites  int64         `json:"commitStatusRecordWrites,omitempty"`
	ForgePosts    int64         `json:"forgePosts,omitempty"`
	CPU           cpuSample     `json:"cpuSeconds"`
	CPUShare      float64       `json:"cpuShareOfTwoCores"`
	Decomposition decomposition `json:"p1Decomposition"`

	// shipped+archive: what the archive did over the cell, by its own counters
	// (archiveCounters).
	Archive map[string]float64 `json:"archiveMetrics,omitempty"`
}

type cellResult struct {
	cell
	Reps []rep `json:"repetitions"`
}

// median and spread of a figure over the repetitions.
func (c cellResult) stat(f func(rep) float64) (med, lo, hi float64) {
	v := make([]float64, len(c.Reps))
	for i, r := range c.Reps {
		v[i] = f(r)
	}
	sort.Float64s(v)
	if len(v) == 0 {
		return 0, 0, 0
	}
	return v[len(v)/2], v[0], v[len(v)-1]
}

// memory is P4: the real manager binary, in its own process, with history in the cluster.
type memory struct {
	FinishedRuns  int      `json:"finishedRunsInCluster"`
	Jobs          int      `json:"jobsInCluster"`
	Pods          int      `json:"podsInCluster"`
	Reconciles    float64  `json:"reconcilesAtStart"`
	SettleSeconds float64  `json:"settleSeconds"`
	QuietRSSMB    float64  `json:"vmRSSWhenQuietMiB"`
	RSSMB         float64  `json:"vmRSSMiB"`
	PeakRSSMB     float64  `json:"vmHWMMiB"`
	HeapTop       []string `json:"inuseSpaceTop"`
	MemStats      string   `json:"memStats"`
	HeapProfile   string   `json:"heapProfile"`
}

type report struct {
	When      time.Time    `json:"when"`
	GoVersion string       `json:"goVersion"`
	CPUs      int          `json:"cpus"`
	Scale     float64      `json:"scale"`
	Reps      int          `json:"repetitions"`
	Sweep     []sweep      `json:"floorSweep"`
	Cells     []cellResult `json:"cells"`
	Memory    []memory     `json:"memory,omitempty"`
}

func newReport(scale float64, reps int) *report {
	return &report{When: time.Now().UTC(), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), Scale: scale, Reps: reps}
}

// writeJSON writes the report to bin/bench/controller.json at the repository root.
func (r *report) writeJSON() (string, error) {
	dir := filepath.Join("..", "..", "bin", "bench")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "controller.json")
	return path, os.WriteFile(path, append(b, '\n'), 0o644)
}
