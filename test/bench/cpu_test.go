package bench

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	dto "github.com/prometheus/client_model/go"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times on Linux.
const clockTicks = 100

// cpuSample is the CPU seconds each process has used so far.
type cpuSample struct {
	APIServer, Etcd, Self, Children float64
	// Operator is the manager binary in its own process (P4, the shipped cell).
	Operator float64
	// Archive is the same binary run as the archive (the shipped+archive cell).
	Archive float64
}

// sampleCPU reads the CPU time of envtest's kube-apiserver and etcd (children of this
// process), of the flow-ci binary this process started (the manager, the archive), of
// this process (the operator's manager, the completer and the harness) and of its
// waited-for children (the git processes the git server ran).
func sampleCPU() cpuSample {
	var s cpuSample
	me := strconv.Itoa(os.Getpid())
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ... utime(14) stime(15)
		line := string(b)
		open, closing := strings.IndexByte(line, '('), strings.LastIndexByte(line, ')')
		if open < 0 || closing < open {
			continue
		}
		comm, fields := line[open+1:closing], strings.Fields(line[closing+1:])
		if len(fields) < 13 || fields[1] != me {
			continue
		}
		ut, _ := strconv.ParseFloat(fields[11], 64)
		st, _ := strconv.ParseFloat(fields[12], 64)
		switch comm {
		case "kube-apiserver":
			s.APIServer += (ut + st) / clockTicks
		case "etcd":
			s.Etcd += (ut + st) / clockTicks
		case "flow-ci":
			if isArchive(filepath.Dir(p)) {
				s.Archive += (ut + st) / clockTicks
			} else {
				s.Operator += (ut + st) / clockTicks
			}
		}
	}
	var self, children syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	s.Self = tv(self.Utime) + tv(self.Stime)
	s.Children = tv(children.Utime) + tv(children.Stime)
	return s
}

// isArchive says whether the process at /proc/<pid> runs `flow-ci archive`.
func isArchive(procDir string) bool {
	b, err := os.ReadFile(filepath.Join(procDir, "cmdline"))
	args := strings.Split(string(b), "\x00")
	return err == nil && len(args) > 1 && args[1] == "archive"
}

func (a cpuSample) sub(b cpuSample) cpuSample {
	return cpuSample{a.APIServer - b.APIServer, a.Etcd - b.Etcd, a.Self - b.Self, a.Children - b.Children, a.Operator - b.Operator, a.Archive - b.Archive}
}

func (a cpuSample) total() float64 {
	return a.APIServer + a.Etcd + a.Self + a.Children + a.Operator + a.Archive
}

// histSums are controller-runtime's histograms of the PipelineRun controller, summed
// (they are global to the process; a cell takes the difference).
type histSums struct {
	QueueWait, Work, API      float64 // seconds
	QueueN, WorkN, APIN       float64
	queueBuckets, workBuckets map[float64]float64
}

// sampleMetrics reads the workqueue wait and reconcile time of the controller named
// "pipelinerun", and the client's request latency, from controller-runtime's registry.
func sampleMetrics() histSums {
	h := histSums{queueBuckets: map[float64]float64{}, workBuckets: map[float64]float64{}}
	families, _ := metrics.Registry.Gather()
	for _, f := range families {
		for _, m := range f.GetMetric() {
			hist := m.GetHistogram()
			if hist == nil {
				continue
			}
			switch {
			case f.GetName() == "workqueue_queue_duration_seconds" && label(m, "name") == "pipelinerun":
				h.QueueWait, h.QueueN = h.QueueWait+hist.GetSampleSum(), h.QueueN+float64(hist.GetSampleCount())
				addBuckets(h.queueBuckets, hist)
			case f.GetName() == "controller_runtime_reconcile_time_seconds" && label(m, "controller") == "pipelinerun":
				h.Work, h.WorkN = h.Work+hist.GetSampleSum(), h.WorkN+float64(hist.GetSampleCount())
				addBuckets(h.workBuckets, hist)
			case f.GetName() == "rest_client_request_duration_seconds":
				h.API, h.APIN = h.API+hist.GetSampleSum(), h.APIN+float64(hist.GetSampleCount())
			}
		}
	}
	return h
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func addBuckets(into map[float64]float64, h *dto.Histogram) {
	for _, b := range h.GetBucket() {
		into[b.GetUpperBound()] += float64(b.GetCumulativeCount())
	}
}

// decomposition is P1's parts over a cell: mean and p99 (a histogram bucket's upper
// bound) of the time a request waited in the workqueue and of a reconcile, and the
// mean latency of the operator's API requests (this includes informers' watches'
// setup, never their streams).
type decomposition struct {
	QueueWaitMeanMs float64 `json:"queueWaitMeanMillis"`
	QueueWaitP99Ms  float64 `json:"queueWaitP99Millis"`
	ReconcileMeanMs float64 `json:"reconcileMeanMillis"`
	ReconcileP99Ms  float64 `json:"reconcileP99Millis"`
	Reconciles      float64 `json:"reconciles"`
	APIMeanMs       float64 `json:"apiRequestMeanMillis"`
}

func decompose(before, after histSums) decomposition {
	d := decomposition{Reconciles: after.WorkN - before.WorkN}
	if n := after.QueueN - before.QueueN; n > 0 {
		d.QueueWaitMeanMs = 1000 * (after.QueueWait - before.QueueWait) / n
		d.QueueWaitP99Ms = 1000 * p99(before.queueBuckets, after.queueBuckets, n)
	}
	if n := after.WorkN - before.WorkN; n > 0 {
		d.ReconcileMeanMs = 1000 * (after.Work - before.Work) / n
		d.ReconcileP99Ms = 1000 * p99(before.workBuckets, after.workBuckets, n)
	}
	if n := after.APIN - before.APIN; n > 0 {
		d.APIMeanMs = 1000 * (after.API - before.API) / n
	}
	return d
}

// p99 is the smallest bucket bound under which 99% of the cell's samples fall.
func p99(before, after map[float64]float64, n float64) float64 {
	best := -1.0
	for bound, c := range after {
		if c-before[bound] >= 0.99*n && (best < 0 || bound < best) {
			best = bound
		}
	}
	return best
}
