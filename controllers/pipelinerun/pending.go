package pipelinerun

import (
	"context"
	"errors"
	"time"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// reconcilePendingDeadline applies spec.timeout and cancel to a run that has no Job
// yet: its timeout counts from admission in every phase, so a run whose Secret never
// appears, or whose server never answers, ends instead of waiting for ever. It may end
// the run (and is then done); running runs are stopped by reconcileStop, which keeps
// the log tails of their steps.
func (r *Reconciler) reconcilePendingDeadline(ctx context.Context, s *scope) (bool, error) {
	if s.run.Status.Phase != v1alpha1.PhasePending {
		return false, nil
	}
	r.checkDeadline(ctx, s)
	return s.run.Status.Phase.IsFinished(), nil
}

// gitContext bounds a git call of a run admitted at start by the run's deadline and its
// pending timeout, so a silent server costs the run at most the shorter of them. The
// pending timeout does not count the time the run's fetches waited for a slot behind
// other work (waited): a tenant's queue of runs never times out another's.
func (r *Reconciler) gitContext(ctx context.Context, start time.Time, waited time.Duration, run *v1alpha1.PipelineRun) (context.Context, context.CancelFunc) {
	deadline := start.Add(run.Spec.TimeoutOrDefault())
	if limit := r.Lifecycle.PendingTimeout; limit > 0 && start.Add(waited+limit).Before(deadline) {
		deadline = start.Add(waited + limit)
	}
	return context.WithDeadline(ctx, deadline)
}

// waitedTooLong reports whether a run still without its definition has been admitted
// for longer than the pending timeout, not counting the time its fetches waited for a
// slot, so that its last transient error ends it.
func (r *Reconciler) waitedTooLong(s *scope, err error) bool {
	limit := r.Lifecycle.PendingTimeout
	if limit <= 0 || s.run.Status.DefinitionDigest != "" || s.run.Status.StartTime == nil {
		return false
	}
	// Wall time, not the pass's clock: the git call may have run until the deadline.
	return time.Since(s.run.Status.StartTime.Time)-r.fetches.waitedFor(s.run.UID) >= limit
}

// waitReason is the reason a run fails with after waiting for err too long.
func waitReason(err error) string {
	var w *waitError
	if errors.As(err, &w) {
		return w.reason
	}
	return v1alpha1.ReasonSourceUnavailable
}
