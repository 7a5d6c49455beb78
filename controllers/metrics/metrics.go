// Package metrics holds flow-ci's Prometheus series and the operator's metrics endpoint:
// what the controllers record after a status write succeeded, the runs gauge read from
// the cache at scrape time, and the HTTPS endpoint's options.
package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/render"
)

// flow-ci's metrics, on controller-runtime's registry. Every label set is bounded:
// namespace, result (a run's or step's final phase, or ok/error), reason (the
// Succeeded condition's reasons, constants of the API), phase, operation and provider.
// No label is ever a run, commit or branch; repository only when
// --metrics-repository-label asks, capped (RepositoryLabels).
var (
	runDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "flowci_pipelinerun_duration_seconds",
		Help:    "Time from a run's start (its admission) to its end.",
		Buckets: []float64{15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400},
	}, []string{"namespace", "result", "repository"})
	runTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flowci_pipelinerun_total",
		Help: "Runs that ended, by result and the reason of their Succeeded condition.",
	}, []string{"namespace", "result", "reason", "repository"})
	queueWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "flowci_pipelinerun_queue_wait_seconds",
		Help:    "Time from a run's creation to its admission (queued by a concurrency policy or --max-active-runs).",
		Buckets: []float64{0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600},
	}, []string{"namespace"})
	stepDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "flowci_step_duration_seconds",
		Help:    "Time from a step's start to its end.",
		Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600},
	}, []string{"namespace", "result"})
	podStart = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "flowci_step_pod_start_seconds",
		Help:    "Time from a step's Job creation to its container running (1 s resolution: Kubernetes timestamps).",
		Buckets: []float64{0.5, 1, 2, 3, 5, 10, 30, 60, 120, 300},
	}, []string{"namespace"})
	handoff = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "flowci_step_handoff_seconds",
		Help:    "Time from the end of the last step (or clone) a step waits for to the creation of its Job (1 s resolution of the end).",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 5, 10, 30},
	}, []string{"namespace"})
	gitSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "flowci_git_seconds",
		Help:    "Duration of the operator's git calls: resolve a branch, read the pipeline file, poll a trigger's branches.",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
	}, []string{"operation", "result"})
	triggerPolls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flowci_trigger_polls_total",
		Help: "PipelineTrigger polls, by result: ok or error.",
	}, []string{"namespace", "result"})
	triggerRuns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flowci_trigger_runs_total",
		Help: "Runs PipelineTriggers started, by cause: push (a new head) or schedule.",
	}, []string{"namespace", "cause"})
	flakySteps = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flowci_steps_flaky_total",
		Help: "Steps that failed and then succeeded on a retry (marked flaky in their run's status).",
	}, []string{"namespace"})
	commitStatus = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flowci_commit_status_reports_total",
		Help: "Commit statuses posted to forges, by provider and result: ok, retry (transient) or refused (permanent).",
	}, []string{"provider", "result"})
)

// collectors are the series above, registered once.
var collectors = []prometheus.Collector{runDuration, runTotal, queueWait, stepDuration, podStart, handoff,
	gitSeconds, triggerPolls, triggerRuns, commitStatus, flakySteps}

func init() {
	crmetrics.Registry.MustRegister(collectors...)
}

// Result is the result label of an outcome: ok or error.
func Result(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// ObserveGit records one git call.
func ObserveGit(operation string, start time.Time, err error) {
	gitSeconds.WithLabelValues(operation, Result(err)).Observe(time.Since(start).Seconds())
}

// ObservePoll records one trigger poll.
func ObservePoll(namespace string, err error) {
	triggerPolls.WithLabelValues(namespace, Result(err)).Inc()
}

// ObserveTriggered records a run a trigger started; cause is push or schedule.
func ObserveTriggered(namespace, cause string) {
	triggerRuns.WithLabelValues(namespace, cause).Inc()
}

// ObserveReport records one commit status post: ok, retry or refused.
func ObserveReport(provider, result string) {
	commitStatus.WithLabelValues(provider, result).Inc()
}

// ForgetNamespace drops every series of a namespace that was deleted: a cluster whose
// namespaces come and go (one per pull request, per test) would otherwise keep their
// series for ever.
func ForgetNamespace(namespace string) {
	for _, vec := range []interface {
		DeletePartialMatch(prometheus.Labels) int
	}{runDuration, runTotal, queueWait, stepDuration, podStart, handoff, triggerPolls, triggerRuns, flakySteps} {
		vec.DeletePartialMatch(prometheus.Labels{"namespace": namespace})
	}
}

// RunMetrics records a pass's run and step transitions (runstate.Transitions), after
// the status write that saved them succeeded, so each is counted once.
type RunMetrics struct {
	Repositories *RepositoryLabels
}

// RunEnded records a run that ended.
func (m RunMetrics) RunEnded(run *v1alpha1.PipelineRun, reason string) {
	repo := m.Repositories.Value(run.Spec.RepoURL)
	ns, result := run.Namespace, string(run.Status.Phase)
	runTotal.WithLabelValues(ns, result, reason, repo).Inc()
	if st, end := run.Status.StartTime, run.Status.CompletionTime; st != nil && end != nil {
		runDuration.WithLabelValues(ns, result, repo).Observe(end.Sub(st.Time).Seconds())
	}
}

// RunStarted records how long a run waited to be admitted.
func (m RunMetrics) RunStarted(run *v1alpha1.PipelineRun) {
	if st := run.Status.StartTime; st != nil {
		queueWait.WithLabelValues(run.Namespace).Observe(max(st.Sub(run.CreationTimestamp.Time).Seconds(), 0))
	}
}

// StepEnded records a step's duration, and counts it when it is flaky (it succeeded on a
// retry).
func (m RunMetrics) StepEnded(namespace string, s v1alpha1.StepStatus) {
	if s.StartTime != nil && s.CompletionTime != nil {
		stepDuration.WithLabelValues(namespace, string(s.Phase)).Observe(max(s.CompletionTime.Sub(s.StartTime.Time).Seconds(), 0))
	}
	if s.Flaky {
		flakySteps.WithLabelValues(namespace).Inc()
	}
}

// StepPodStarted records how long a step pod took from its Job's creation to its
// container running.
func (m RunMetrics) StepPodStarted(namespace string, jobCreated, containerStarted time.Time) {
	if !jobCreated.IsZero() && !containerStarted.IsZero() {
		podStart.WithLabelValues(namespace).Observe(max(containerStarted.Sub(jobCreated).Seconds(), 0))
	}
}

// StepStarted records the handoff: from the end of what the step waited for to now,
// when its Job was created.
func (m RunMetrics) StepStarted(namespace string, waitedFor, now time.Time) {
	if !waitedFor.IsZero() {
		handoff.WithLabelValues(namespace).Observe(max(now.Sub(waitedFor).Seconds(), 0))
	}
}

// RepositoryLabels is the opt-in repository label: the normalised repository URL of the
// first Max repositories seen, "other" for the rest; "" when disabled.
type RepositoryLabels struct {
	Enabled bool
	Max     int

	mu   sync.Mutex
	seen map[string]bool
}

// Value is the label value for repoURL.
func (r *RepositoryLabels) Value(repoURL string) string {
	if r == nil || !r.Enabled {
		return ""
	}
	repo := render.NormalizeRepoURL(repoURL)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	if !r.seen[repo] && len(r.seen) >= r.Max {
		return "other"
	}
	r.seen[repo] = true
	return repo
}

// runsGauge is flowci_pipelineruns{namespace,phase}, counted from the manager's cache
// when scraped, so it is exact and costs nothing between scrapes. Only the leader
// reports it: a standby's cache is as warm, and a sum over the replicas would count
// every run twice.
type runsGauge struct {
	reader  client.Reader
	elected <-chan struct{}
	desc    *prometheus.Desc
}

// RegisterRunsGauge adds flowci_pipelineruns, read from reader (the manager's cache) once
// elected is closed (the manager's Elected()). A second registration (tests run several
// managers) keeps the first.
func RegisterRunsGauge(reader client.Reader, elected <-chan struct{}) {
	_ = crmetrics.Registry.Register(&runsGauge{reader: reader, elected: elected, desc: prometheus.NewDesc("flowci_pipelineruns",
		"Runs that exist, by namespace and phase (Queued is the queue's length).", []string{"namespace", "phase"}, nil)})
}

func (g *runsGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *runsGauge) Collect(ch chan<- prometheus.Metric) {
	select {
	case <-g.elected:
	default:
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list := &v1alpha1.PipelineRunList{}
	if err := g.reader.List(ctx, list); err != nil {
		return
	}
	type key struct{ ns, phase string }
	counts := map[key]int{}
	for _, r := range list.Items {
		phase := string(r.Status.Phase)
		if phase == "" {
			phase = string(v1alpha1.PhasePending)
		}
		counts[key{r.Namespace, phase}]++
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, float64(n), k.ns, k.phase)
	}
}

// ServerOptions serves metrics on addr: over HTTPS to clients the API server
// authenticates and authorizes (get on /metrics) when secure, with the certificate in
// certDir (tls.crt and tls.key, reloaded when they change: config/certmanager mounts
// cert-manager's) or, without one, a self-signed certificate a scraper cannot verify;
// plain HTTP to anyone otherwise.
func ServerOptions(addr string, secure bool, certDir string) metricsserver.Options {
	if !secure {
		return metricsserver.Options{BindAddress: addr}
	}
	return metricsserver.Options{BindAddress: addr, SecureServing: true, FilterProvider: filters.WithAuthenticationAndAuthorization,
		CertDir: certDir, CertName: "tls.crt", KeyName: "tls.key"}
}
