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
	// caches: restores by result (hit, miss), bytes by direction (restored, saved),
	// seconds a save took, and entries evicted.
	cacheRestores *prometheus.CounterVec
	cacheBytes    *prometheus.CounterVec
	cacheSave     prometheus.Histogram
	cacheEvicted  prometheus.Counter
	now           func() time.Time
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
			cacheRestores: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flowci_archive_cache_restores_total",
				Help: "Cache restores by result: hit (an entry was sent) or miss."}, []string{"result"}),
			cacheBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flowci_archive_cache_bytes_total",
				Help: "Cache bytes (compressed) by direction: restored (sent) or saved (received)."}, []string{"direction"}),
			cacheSave: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "flowci_archive_cache_save_seconds",
				Help: "How long storing a saved cache entry took.", Buckets: prometheus.ExponentialBuckets(0.1, 3, 8)}),
			cacheEvicted: prometheus.NewCounter(prometheus.CounterOpts{Name: "flowci_archive_cache_evicted_total",
				Help: "Cache entries evicted, least recently used first, past a namespace's --max-namespace-cache-bytes."}),
			now: time.Now,
		}
		crmetrics.Registry.MustRegister(m.records, m.released, m.bytes, m.lag, m.errors, m.active, m.stored, m.deleted,
			m.cacheRestores, m.cacheBytes, m.cacheSave, m.cacheEvicted)
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

// Restore implements api.CacheMetrics.
func (m *Metrics) Restore(result string, bytes int64) {
	m.cacheRestores.WithLabelValues(result).Inc()
	if bytes > 0 {
		m.cacheBytes.WithLabelValues("restored").Add(float64(bytes))
	}
}

// Saved implements api.CacheMetrics.
func (m *Metrics) Saved(bytes int64, took time.Duration) {
	m.cacheBytes.WithLabelValues("saved").Add(float64(bytes))
	m.cacheSave.Observe(took.Seconds())
}
