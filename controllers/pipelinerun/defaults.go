package pipelinerun

import "time"

// The operator's defaults, shared by cmd/manager's flags and the benchmark, which runs
// the controller exactly as the operator does.
const (
	// DefaultNamespaceHistoryLimit is --namespace-history-limit: finished runs kept
	// per namespace.
	DefaultNamespaceHistoryLimit = 1000
	// DefaultMaxConcurrentReconciles is --max-concurrent-reconciles.
	DefaultMaxConcurrentReconciles = 4
	// DefaultQPS and DefaultBurst are --kube-api-qps and --kube-api-burst: the client's
	// own limit, above client-go's 5/10 and controller-runtime's 20/30, because a burst of
	// runs is Job creates and status writes; the API server's priority and fairness
	// protects the cluster.
	DefaultQPS   = 100
	DefaultBurst = 200
	// DefaultMaxParallelSteps is --max-parallel-steps: the Jobs of one run that run at once.
	DefaultMaxParallelSteps = 4
	// DefaultFinallyGrace is --finally-grace: how long a run's finally steps may run
	// after its spec.timeout before the run ends anyway.
	DefaultFinallyGrace = 5 * time.Minute
	// DefaultMaxWorkspaceSize is --max-workspace-size: far above what a build needs,
	// far below what a tenant could make a cloud provisioner create.
	DefaultMaxWorkspaceSize = "100Gi"
	// DefaultMaxRetainOnFailure is --max-retain-on-failure.
	DefaultMaxRetainOnFailure = 72 * time.Hour
)
