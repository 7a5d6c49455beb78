package pipelinerun

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/runstate"
	"github.com/flow-ci/flow-ci/internal/shorten"
)

// firstWriteDelay is how long a new run's first status may wait for its definition
// fetch, so that a fetch that ends quickly shares the run's first write with its clone.
const firstWriteDelay = 5 * time.Second

// writeStatus ends the run on a permanent error, records a transient one on the
// Reconciling condition, and patches status once, locked on the resourceVersion the
// pass read. Events follow only a successful patch, from that pass's transitions.
func (r *Reconciler) writeStatus(ctx context.Context, s *scope, before *v1alpha1.PipelineRun, err error) (reconcile.Result, error) {
	run := s.run
	var re *runError
	switch {
	case errors.As(err, &re):
		runstate.End(run, runstate.Ending{Phase: v1alpha1.PhaseFailed, Reason: re.reason, Message: re.Error()}, metav1.NewTime(s.now))
		log.FromContext(ctx).V(1).Info("run failed", "reason", re.reason)
		apimeta.RemoveStatusCondition(&run.Status.Conditions, v1alpha1.ConditionReconciling)
		err = nil
	case err != nil && r.waitedTooLong(s, err):
		runstate.End(run, runstate.Ending{Phase: v1alpha1.PhaseFailed, Reason: waitReason(err),
			Message: fmt.Sprintf("gave up after %s (--pending-timeout): %v", r.Lifecycle.PendingTimeout, err)}, metav1.NewTime(s.now))
		apimeta.RemoveStatusCondition(&run.Status.Conditions, v1alpha1.ConditionReconciling)
		err = nil
	case err != nil:
		apimeta.SetStatusCondition(&run.Status.Conditions, metav1.Condition{
			Type: v1alpha1.ConditionReconciling, Status: metav1.ConditionTrue,
			Reason: v1alpha1.ReasonTransientError, Message: shorten.Tail(err.Error(), v1alpha1.MaxMessageBytes),
			ObservedGeneration: run.Generation,
		})
	default:
		apimeta.RemoveStatusCondition(&run.Status.Conditions, v1alpha1.ConditionReconciling)
	}
	if err == nil {
		runstate.Observe(run)
	}
	res := s.result()
	if err != nil {
		res = reconcile.Result{}
	}
	if equality.Semantic.DeepEqual(before.Status, run.Status) {
		if err == nil && !run.Status.Phase.IsFinished() {
			err = r.stopEndedJobs(ctx, s)
		}
		return res, err
	}
	if r.firstWriteWaits(s, before, err) {
		// A new run whose definition is being fetched: its first status waits for the
		// fetch, which wakes it when it is done or after firstWriteDelay.
		return reconcile.Result{}, nil
	}
	perr := r.Client.Status().Patch(ctx, run, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
	if apierrors.IsConflict(perr) {
		// The server's run is newer than the copy this pass read: our own last write not
		// yet in the cache, or a user's edit. Nothing of this pass is written; the newer
		// version's watch event reconciles again at once, where an error would wait out
		// the rate limiter's backoff.
		log.FromContext(ctx).V(1).Info("the run changed during the pass; the next event recomputes its status")
		return reconcile.Result{}, err
	}
	if perr != nil {
		return reconcile.Result{}, errors.Join(err, fmt.Errorf("patching status: %w", perr))
	}
	// A patch the server found to change nothing keeps the version, and sends no event.
	if run.ResourceVersion != before.ResourceVersion {
		r.written.wrote(client.ObjectKeyFromObject(run), before.ResourceVersion, run.ResourceVersion)
	}
	ts := runstate.Transitions(&before.Status, &run.Status)
	r.recordEvents(run, ts)
	r.recordMetrics(s, ts)
	if err == nil && !run.Status.Phase.IsFinished() {
		if err := r.stopEndedJobs(ctx, s); err != nil {
			return reconcile.Result{}, err
		}
	}
	if err == nil && run.Status.Phase.IsFinished() {
		// Its outcome is written: stop what still runs and release the workspace now,
		// rather than in a pass of its own.
		s.next = time.Time{}
		if err := r.cleanupFinished(ctx, s); err != nil {
			return reconcile.Result{}, err
		}
		return s.result(), nil
	}
	return res, err
}

// firstWriteWaits says whether the first status of a new run may still wait for its
// definition fetch. A queue that counts admitted runs (--max-active-runs) needs the
// admission written at once.
func (r *Reconciler) firstWriteWaits(s *scope, before *v1alpha1.PipelineRun, err error) bool {
	if !s.fetching || err != nil || before.Status.Phase != "" || r.Lifecycle.MaxActiveRuns > 0 || s.run.Status.StartTime == nil {
		return false
	}
	return s.now.Sub(s.run.Status.StartTime.Time) < firstWriteDelay
}

// observeFinished re-stamps a finished run's status with its generation after an edit
// (a cancel, a new TTL), in one status write, so that kubectl wait and kstatus see the
// outcome as current. Nothing else of a finished run's status changes.
func (r *Reconciler) observeFinished(ctx context.Context, run *v1alpha1.PipelineRun) error {
	before := run.DeepCopy()
	if !runstate.Observe(run) {
		return nil
	}
	if err := r.Client.Status().Patch(ctx, run, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("re-stamping the finished run's observedGeneration: %w", err))
	}
	if run.ResourceVersion != before.ResourceVersion {
		r.written.wrote(client.ObjectKeyFromObject(run), before.ResourceVersion, run.ResourceVersion)
	}
	return nil
}
