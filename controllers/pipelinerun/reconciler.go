// Package pipelinerun is the PipelineRun controller: it turns a run into a definition
// ConfigMap, a workspace PVC, a clone Job and one Job per step, and writes the status
// that internal/runstate derives from those children, once per pass.
package pipelinerun

import (
	"context"
	"net/netip"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers/metrics"
	"github.com/flow-ci/flow-ci/internal/pipeline"
	"github.com/flow-ci/flow-ci/internal/render"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

// Reconciler reconciles PipelineRuns.
type Reconciler struct {
	// Client reads children from the cache and writes through the API server.
	Client client.Client
	// APIReader reads what the cache does not hold: Secrets (get only) and children
	// that exist but are not in the cache yet, or not ours.
	APIReader client.Reader
	// PodsAPI reads the pods of a Job that ended (the cache holds only unfinished
	// pods), streamed through a byte budget: the core/v1 REST client.
	PodsAPI  rest.Interface
	Recorder events.EventRecorder
	Source   Source
	Render   render.Config
	// Archive is where steps that keep artifacts upload them; nil or without an
	// archive, such steps say that nothing was kept.
	Archive *ArchiveTarget
	// Logs reads the bounded log tail of a step that is stopped before it ends.
	Logs      LogReader
	Lifecycle Lifecycle
	// AllowedNetworks are the git servers' networks the default egress policy would
	// deny (--git-allowed-networks); the Source and the clone Jobs get the same list.
	AllowedNetworks []netip.Prefix
	// InFlight, when set, tracks reconciles for the manager's health check.
	InFlight *InFlight
	// Fetchers is how many new runs' git reads run at once (DefaultFetchers when 0).
	Fetchers int
	// StepEvents records progress events: the run's start, and each step's start and
	// success. Step failures, a queued run and the run's end always have one.
	StepEvents bool
	// Metrics records the transitions of each written pass.
	Metrics metrics.RunMetrics
	// ForgetDeletedNamespaces drops the metric series of a namespace once it is
	// deleted, so that they do not pile up as namespaces come and go. It watches
	// namespaces cluster-wide: the operator sets it when it watches all of them.
	ForgetDeletedNamespaces bool

	written writeTracker
	defs    definitionMemo
	fetches *fetcher
	clones  cloneNodes
	times   podTimes
	// deletedPVCs are workspaces deleted whose Terminating state the cache lacks yet.
	deletedPVCs sync.Map
}

// Lifecycle holds the operator-wide defaults that keep runs from being stuck, piling up
// or running unbounded; each comes from a manager flag.
type Lifecycle struct {
	runstate.Watchdogs
	// DefaultTTLSecondsAfterFinished deletes finished runs that set no TTL; 0 keeps them.
	DefaultTTLSecondsAfterFinished int32
	// SuccessfulHistoryLimit and FailedHistoryLimit keep this many finished runs per
	// repository and branch (Cancelled counts as failed); a negative limit keeps all.
	SuccessfulHistoryLimit, FailedHistoryLimit int
	// NamespaceHistoryLimit keeps this many finished runs per namespace, of any
	// repository and branch, so that the runs of branches that are gone (which no new
	// run of theirs prunes) do not pile up (DefaultNamespaceHistoryLimit when 0;
	// runstate.BeyondNamespaceLimit); a negative limit keeps all.
	NamespaceHistoryLimit int
	// MaxActiveRuns queues runs cluster-wide, fairly across namespaces; 0 is unlimited.
	MaxActiveRuns int
	// PendingTimeout bounds how long a run without its definition retries transient
	// errors (a missing Secret, an unreachable server) before it fails with what it
	// waited for. spec.timeout applies too, whichever ends first.
	PendingTimeout time.Duration
	// MaxParallelSteps bounds the step Jobs of one run that run at once
	// (DefaultMaxParallelSteps when 0).
	MaxParallelSteps int
	// FinallyGrace is how long the finally steps of a run that ran past spec.timeout
	// may run before the run ends anyway (DefaultFinallyGrace when 0).
	FinallyGrace time.Duration
	// MaxWorkspaceSize and MaxRetainOnFailure bound spec.workspace.size and
	// spec.workspace.retainOnFailure (--max-workspace-size, --max-retain-on-failure): a
	// run asking for more fails with InvalidSpec before it has any child. Zero means no
	// bound.
	MaxWorkspaceSize   resource.Quantity
	MaxRetainOnFailure time.Duration
	// ArchiveHoldMax bounds how long a deleted run waits for the archive's finalizer
	// (--archive-hold-max): past it the operator removes the finalizer, so that an
	// archive that is down or uninstalled never keeps runs forever. Zero never does.
	ArchiveHoldMax time.Duration
}

func (l Lifecycle) maxParallelSteps() int {
	if l.MaxParallelSteps > 0 {
		return l.MaxParallelSteps
	}
	return DefaultMaxParallelSteps
}

func (l Lifecycle) namespaceHistoryLimit() int {
	if l.NamespaceHistoryLimit == 0 {
		return DefaultNamespaceHistoryLimit
	}
	return l.NamespaceHistoryLimit
}

func (l Lifecycle) finallyGrace() time.Duration {
	if l.FinallyGrace > 0 {
		return l.FinallyGrace
	}
	return DefaultFinallyGrace
}

// LogReader reads the tail of a container's log, bounded in lines and bytes
// (internal/podlogs in the operator); previous reads the instance before its last
// restart.
type LogReader interface {
	TailLog(ctx context.Context, namespace, pod, container string, previous bool) (string, error)
}

// scope is what the phases of one reconcile share.
type scope struct {
	run   *v1alpha1.PipelineRun
	def   *pipeline.Definition
	graph runstate.Graph
	// children observed this pass
	cloneJob  *batchv1.Job
	cloneDone bool   // steps may start
	cloneNode string // the node the clone ran on, when its pod's end was seen (cloneNodes)
	stepJobs  map[int]*batchv1.Job
	pods      []corev1.Pod

	now   time.Time
	fresh bool // nothing of the run was written yet, but perhaps its admission
	// fetching: the run's definition is being fetched, so its first status may wait
	// for it (firstWriteWaits).
	fetching bool
	// changes are what this process's fetch found for when.changes; nil when it did
	// not fetch (a restart after the definition was stored: every file counts).
	changes *runstate.Changes
	next    time.Time // the next deadline to look at the run again, if any
}

// A phase of a pass. It returns done when the pass has nothing more to do: the run
// waits (queued, or for its definition) or ended. An error ends the pass too: one from
// permanent ends the run, any other is retried with backoff.
type phase func(context.Context, *scope) (done bool, err error)

// wakeAt asks for another reconcile at t: deadlines use RequeueAfter, never polling.
func (s *scope) wakeAt(t time.Time) {
	if !t.IsZero() && (s.next.IsZero() || t.Before(s.next)) {
		s.next = t
	}
}

func (s *scope) result() reconcile.Result {
	if s.next.IsZero() {
		return reconcile.Result{}
	}
	return reconcile.Result{RequeueAfter: max(s.next.Sub(s.now), time.Second)}
}

// Reconcile runs the phases in order, concludes the pass in status (runstate), writes
// status once, and only when that write succeeded does what follows it: events, metrics,
// stopping ended Jobs and cleanup (afterwrite.go).
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	run := &v1alpha1.PipelineRun{}
	if err := r.Client.Get(ctx, req.NamespacedName, run); err != nil {
		if apierrors.IsNotFound(err) {
			r.written.forget(req.NamespacedName)
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	// Owner references let the garbage collector remove the children.
	if !run.DeletionTimestamp.IsZero() {
		r.written.forget(req.NamespacedName)
		return r.boundArchiveHold(ctx, run)
	}
	// A pass on a copy older than our own last write waits for that write's event.
	if stale, reread := r.written.stale(run); stale {
		if !reread {
			log.FromContext(ctx).V(1).Info("the cached run predates our last status write; waiting for its event")
			return reconcile.Result{}, nil
		}
		if err := r.Client.Get(ctx, req.NamespacedName, run); err != nil {
			return reconcile.Result{}, client.IgnoreNotFound(err)
		}
	}
	s := &scope{run: run, now: time.Now(), fresh: run.Status.Commit == "" &&
		(run.Status.Phase == "" || run.Status.Phase == v1alpha1.PhaseQueued)}
	if run.Status.Phase.IsFinished() {
		if err := r.observeFinished(ctx, run); err != nil {
			return reconcile.Result{}, err
		}
		err := r.cleanupFinished(ctx, s)
		return s.result(), err
	}
	before := run.DeepCopy()
	p := r.passOf(ctx, s, r.runPhases(ctx, s))
	runstate.ConcludePass(run, p, metav1.NewTime(s.now))
	// Whatever ended them (their Job, a watchdog, a stop, the run's end).
	r.recordTimings(s, runstate.Active(before.Status.Steps))
	switch {
	case equality.Semantic.DeepEqual(before.Status, run.Status):
	case r.firstWriteWaits(s, before, p):
		return reconcile.Result{}, nil
	default:
		if err := r.writeStatus(ctx, run, before); err != nil {
			return r.writeFailed(ctx, err, p)
		}
	}
	return r.afterWrite(ctx, s, before, p)
}

// runPhases runs the phases in order until one is done or fails.
func (r *Reconciler) runPhases(ctx context.Context, s *scope) error {
	for _, phase := range []phase{
		r.validateSpec,
		r.reconcileAdmission,
		r.reconcilePendingDeadline,
		r.reconcileDefinition,
		r.observeChildren,
		r.reconcileResume,
		r.reconcileWorkspace,
		r.reconcileStop,
		r.reconcileClone,
		r.reconcileHold,
		r.reconcileSteps,
	} {
		if done, err := phase(ctx, s); done || err != nil {
			return err
		}
	}
	return nil
}
