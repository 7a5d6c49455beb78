package archive

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics are the archive's series. Labels are bounded: operation (a fixed list) and
// reason (why a run was released). No label is a namespace, run or stream: the archive
// sees every tenant's runs, and per-namespace usage is for retention, not for series.
type Metrics struct {
	records  prometheus.Counter
	released *prometheus.CounterVec
	bytes    prometheus.Counter
	lag      prometheus.Histogram
	errors   *prometheus.CounterVec
	active   prometheus.Gauge
	stored   prometheus.Gauge
	deleted  prometheus.Counter
	now      func() time.Time
}

var (
	metricsOnce sync.Once
	shared      *Metrics
)

// NewMetrics returns the archive's series, registered once on controller-runtime's
// registry (the manager's metrics endpoint).
func NewMetrics() *Metrics {
	metricsOnce.Do(func() {
		m := &Metrics{
			records: prometheus.NewCounter(prometheus.CounterOpts{Name: "flowci_archive_records_total",
				Help: "Run records stored."}),
			released: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flowci_archive_released_total",
				Help: "Runs the archive let go of: archived (complete), or hold-expired (deleted, and waited for past --hold)."},
				[]string{"reason"}),
			bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "flowci_archive_log_bytes_total",
				Help: "Log bytes stored (uncompressed)."}),
			lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "flowci_archive_lag_seconds",
				Help:    "At each store of a log's chunk: how far its newest line (the kubelet's timestamp) is behind now.",
				Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300}}),
			errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flowci_archive_errors_total",
				Help: "Errors by operation: stream, state, append, record, release, retention."}, []string{"operation"}),
			active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "flowci_archive_streams_active",
				Help: "Logs being streamed now."}),
			stored: prometheus.NewGauge(prometheus.GaugeOpts{Name: "flowci_archive_stored_bytes",
				Help: "What the archive holds (compressed logs and records), as of the last retention pass."}),
			deleted: prometheus.NewCounter(prometheus.CounterOpts{Name: "flowci_archive_retention_deleted_total",
				Help: "Records (with their logs) deleted by retention."}),
			now: time.Now,
		}
		crmetrics.Registry.MustRegister(m.records, m.released, m.bytes, m.lag, m.errors, m.active, m.stored, m.deleted)
		shared = m
	})
	return shared
}

func (m *Metrics) error(op string) { m.errors.WithLabelValues(op).Inc() }

// stored counts a stored chunk and the lag of its newest line.
func (m *Metrics) storedChunk(n int, newest time.Time) {
	m.bytes.Add(float64(n))
	if n > 0 && !newest.IsZero() {
		m.lag.Observe(m.now().Sub(newest).Seconds())
	}
}
