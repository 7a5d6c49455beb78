package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"
)

// result is one scenario's numbers.
type result struct {
	Name          string  `json:"name"`
	MaxReconciles int     `json:"maxConcurrentReconciles"`
	Runs          int     `json:"runs"`
	Steps         int     `json:"stepsPerRun"`
	Succeeded     int     `json:"succeeded"`
	WallSeconds   float64 `json:"wallSeconds"`

	// P1: step i's Job observed by the watch minus step i-1's Job marked Complete.
	Handoffs     int       `json:"handoffs"`
	P1           quantiles `json:"handoffMillis"`
	CloneToStep0 quantiles `json:"cloneToStep0Millis"`
	// P2 over the scenario's wall time.
	RunsPerMin     float64 `json:"runsPerMinute"`
	HandoffsPerMin float64 `json:"handoffsPerMinute"`
	// P3 per pipeline step (the clone Job is not a step: it is counted in the run's cost).
	Writes               int64            `json:"writes"`
	UncachedReads        int64            `json:"uncachedReads"`
	InformerRequests     int64            `json:"informerRequests"`
	Conflicts            int64            `json:"conflicts"`
	WritesPerStep        float64          `json:"writesPerStep"`
	UncachedReadsPerStep float64          `json:"uncachedReadsPerStep"`
	ByResource           map[string]int64 `json:"requestsByResource"`
}

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

// floor is a plain client's Job create plus status update against the same apiserver.
type floor struct {
	Iterations int     `json:"iterations"`
	P50Millis  float64 `json:"createPlusStatusP50Millis"`
	CreateP50  float64 `json:"createP50Millis"`
	StatusP50  float64 `json:"statusUpdateP50Millis"`
}

// memory is P4: the operator's footprint with its cache full of history.
type memory struct {
	FinishedRuns      int     `json:"finishedRunsInCluster"`
	Jobs              int     `json:"jobsInCluster"`
	HistoryCreated    int     `json:"historyRunsCreatedDirectly"`
	HeapInuseBeforeMB float64 `json:"heapInuseBeforeManagerMiB"`
	HeapInuseMB       float64 `json:"heapInuseWithCacheMiB"`
	RSSMB             float64 `json:"vmRSSMiB"`
	PeakRSSMB         float64 `json:"vmHWMMiB"`
	CachedRuns        int     `json:"runsInOperatorCache"`
	CachedJobs        int     `json:"jobsInOperatorCache"`
	SettleSeconds     float64 `json:"settleSeconds"`
	Note              string  `json:"note"`
}

type report struct {
	When      time.Time `json:"when"`
	GoVersion string    `json:"goVersion"`
	CPUs      int       `json:"cpus"`
	Scale     float64   `json:"scale"`
	Floor     floor     `json:"floor"`
	Scenarios []result  `json:"scenarios"`
	Memory    *memory   `json:"memory,omitempty"`
}

func (r *report) markdown(w io.Writer) {
	fmt.Fprintf(w, "\n### flow-ci controller benchmark (envtest, %d CPUs, %s, scale %.2f)\n\n", r.CPUs, r.GoVersion, r.Scale)
	if r.Floor.Iterations > 0 {
		fmt.Fprintf(w, "Floor (plain client, Job create + status update, %d iterations): p50 %.1f ms (create %.1f ms, status %.1f ms)\n\n",
			r.Floor.Iterations, r.Floor.P50Millis, r.Floor.CreateP50, r.Floor.StatusP50)
	}
	fmt.Fprintln(w, "| scenario | MCR | ok | wall s | runs/min | handoffs/min | P1 p50 ms | P1 p90 ms | P1 p99 ms | P1 p50 / floor | clone→step0 p50 ms | writes/step | uncached reads/step | 409s | informer reqs |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, s := range r.Scenarios {
		ratio := "–" // the smoke measures no floor
		if r.Floor.P50Millis > 0 {
			ratio = fmt.Sprintf("%.1fx", s.P1.P50/r.Floor.P50Millis)
		}
		fmt.Fprintf(w, "| %s | %d | %d/%d | %.1f | %.0f | %.0f | %.1f | %.1f | %.1f | %s | %.1f | %.2f | %.2f | %d | %d |\n",
			s.Name, s.MaxReconciles, s.Succeeded, s.Runs, s.WallSeconds, s.RunsPerMin, s.HandoffsPerMin,
			s.P1.P50, s.P1.P90, s.P1.P99, ratio, s.CloneToStep0.P50, s.WritesPerStep, s.UncachedReadsPerStep, s.Conflicts, s.InformerRequests)
	}
	fmt.Fprintln(w, "\nwrites/step and uncached reads/step divide the operator's requests by pipeline steps (runs × steps); the clone Job, PVC, definition ConfigMap, events and status patches of a run are all in the numerator.")
	if len(r.Scenarios) > 0 {
		last := r.Scenarios[len(r.Scenarios)-1]
		fmt.Fprintf(w, "\nRequests of %s at MCR %d by verb and resource: %s\n", last.Name, last.MaxReconciles, formatCounts(last.ByResource))
	}
	if m := r.Memory; m != nil {
		fmt.Fprintf(w, "\nP4 memory: %d finished runs and %d Jobs in the cluster (%d runs created directly as history); the operator's cache held %d runs and %d Jobs; its start-up pass (cache sync plus one reconcile per run) went quiet after %.1f s.\n",
			m.FinishedRuns, m.Jobs, m.HistoryCreated, m.CachedRuns, m.CachedJobs, m.SettleSeconds)
		fmt.Fprintf(w, "HeapInuse %.1f MiB before the manager, %.1f MiB with its cache synced; VmRSS %.1f MiB; VmHWM (peak RSS of the whole run) %.1f MiB.\n%s\n",
			m.HeapInuseBeforeMB, m.HeapInuseMB, m.RSSMB, m.PeakRSSMB, m.Note)
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

func newReport(scale float64) *report {
	return &report{When: time.Now().UTC(), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), Scale: scale}
}
