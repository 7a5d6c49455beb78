package pipelinerun

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

// firstWriteDelay is how long a new run's first status may wait for its definition
// fetch, so that a fetch that ends quickly shares the run's first write with its clone.
const firstWriteDelay = 5 * time.Second

// passOf says how the pass went, for runstate.ConcludePass: an error from permanent
// ends the run with its reason; a transient one that outlasted the pending timeout ends
// it with what it waited for; any other is retried.
func (r *Reconciler) passOf(ctx context.Context, s *scope, err error) runstate.Pass {
	var re *runError
	switch {
	case errors.As(err, &re):
		log.FromContext(ctx).V(1).Info("run failed", "reason", re.reason)
		return runstate.Pass{Ending: &runstate.Ending{Phase: v1alpha1.PhaseFailed, Reason: re.reason, Message: re.Error()}}
	case err != nil && r.waitedTooLong(s, err):
		return runstate.Pass{Ending: &runstate.Ending{Phase: v1alpha1.PhaseFailed, Reason: waitReason(err),
			Message: fmt.Sprintf("gave up after %s (--pending-timeout): %v", r.Lifecycle.PendingTimeout, err)}}
	}
	return runstate.Pass{Transient: err}
}

// firstWriteWaits says whether the first status of a new run may still wait for its
// definition fetch. A queue that counts admitted runs (--max-active-runs) needs the
// admission written at once.
func (r *Reconciler) firstWriteWaits(s *scope, before *v1alpha1.PipelineRun, p runstate.Pass) bool {
	if !s.fetching || p.Transient != nil || before.Status.Phase != "" || r.Lifecycle.MaxActiveRuns > 0 || s.run.Status.StartTime == nil {
		return false
	}
	return s.now.Sub(s.run.Status.StartTime.Time) < firstWriteDelay
}

// writeStatus patches the run's status from before to run, locked on the
// resourceVersion the pass read (runstate.StatusPatch: only the members and step
// entries that changed), and records the write (writeTracker). It only writes.
func (r *Reconciler) writeStatus(ctx context.Context, run, before *v1alpha1.PipelineRun) error {
	patch, err := runstate.StatusPatch(&before.Status, &run.Status, before.ResourceVersion)
	if err != nil {
		return fmt.Errorf("encoding the status patch: %w", err)
	}
	if err := r.Client.Status().Patch(ctx, run, client.RawPatch(types.JSONPatchType, patch)); err != nil {
		return err
	}
	// A patch the server found to change nothing keeps the version, and sends no event.
	if run.ResourceVersion != before.ResourceVersion {
		r.written.wrote(client.ObjectKeyFromObject(run), before.ResourceVersion, run.ResourceVersion)
	}
	return nil
}

// conflictRetry is how soon a pass whose status write met a newer run is tried again:
// long enough for the cache to have the newer run.
const conflictRetry = 100 * time.Millisecond

// writeFailed is the result of a pass whose status write failed: nothing of the pass
// is kept. A conflict means the server's run is newer than the copy the pass read (our
// own last write not yet in the cache, a user's edit, or another controller's change of
// metadata only, such as the archive adding its finalizer, whose event runEvents does not
// pass on), so the pass is tried again shortly, where an error would wait out the rate
// limiter's backoff.
func (r *Reconciler) writeFailed(ctx context.Context, err error, p runstate.Pass) (reconcile.Result, error) {
	if apierrors.IsConflict(err) {
		log.FromContext(ctx).V(1).Info("the run changed during the pass; trying again")
		return reconcile.Result{RequeueAfter: conflictRetry}, p.Transient
	}
	return reconcile.Result{}, errors.Join(p.Transient, fmt.Errorf("patching status: %w", err))
}

// observeFinished re-stamps a finished run's status with its generation after an edit
// (a cancel, a new TTL), in one status write, so that kubectl wait and kstatus see the
// outcome as current. Nothing else of a finished run's status changes.
func (r *Reconciler) observeFinished(ctx context.Context, run *v1alpha1.PipelineRun) error {
	before := run.DeepCopy()
	if !runstate.Observe(run) {
		return nil
	}
	if err := r.writeStatus(ctx, run, before); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("re-stamping the finished run's observedGeneration: %w", err))
	}
	return nil
}
