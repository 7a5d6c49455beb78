package pipelinerun

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

// afterWrite does what follows a pass whose status was written, or had nothing to
// write: it records the events and metrics of what changed (runstate.Transitions, empty
// when nothing did), stops the Jobs of steps that ended without them, and, once the run
// finished, releases what it holds (cleanupFinished) in the same pass. A transient
// error of the pass is returned for backoff.
func (r *Reconciler) afterWrite(ctx context.Context, s *scope, before *v1alpha1.PipelineRun, p runstate.Pass) (reconcile.Result, error) {
	run := s.run
	ts := runstate.Transitions(&before.Status, &run.Status)
	r.recordEvents(run, ts)
	r.recordMetrics(s, ts)
	if p.Transient != nil {
		return reconcile.Result{}, p.Transient
	}
	if !run.Status.Phase.IsFinished() {
		return s.result(), r.stopEndedJobs(ctx, s)
	}
	s.next = time.Time{}
	if err := r.cleanupFinished(ctx, s); err != nil {
		return reconcile.Result{}, err
	}
	if before.Status.Phase.IsFinished() {
		return s.result(), nil
	}
	return s.result(), r.enforceNamespaceHistory(ctx, run)
}

// recordEvents records an event for what needs attention and how a run ended, once the
// pass's status was written: a queued run, a failed step, the run's end. Progress (the
// run's start, each step's start and success) is in status, and in events only with
// StepEvents: an event is a write, and a run's start is already told by its status. A failed run's event is
// reason Failed, with the condition's specific reason leading its note.
func (r *Reconciler) recordEvents(run *v1alpha1.PipelineRun, ts []runstate.Transition) {
	if r.Recorder == nil {
		return
	}
	emit := func(eventType, reason, note string, args ...any) {
		r.Recorder.Eventf(run, nil, eventType, reason, "Reconcile", note, args...)
	}
	st := &run.Status
	for _, t := range ts {
		var step v1alpha1.StepStatus
		if t.Step >= 0 {
			step = st.Steps[t.Step]
		}
		switch {
		case t.Kind == runstate.RunQueued:
			emit(corev1.EventTypeNormal, v1alpha1.ReasonQueued, "%s", t.Message)
		case t.Kind == runstate.RunStarted && r.StepEvents:
			where := st.Branch
			if st.Detached {
				where = "detached HEAD"
			}
			emit(corev1.EventTypeNormal, v1alpha1.EventStarted, "building %s at %s (pipeline %q, %d steps)",
				where, st.ShortCommit, st.PipelineName, len(st.Steps))
		case t.Kind == runstate.StepStarted && r.StepEvents:
			emit(corev1.EventTypeNormal, v1alpha1.EventStepStarted, "step %q started (Job %s)", step.Name, step.JobName)
		case t.Kind == runstate.StepEnded && step.Phase == v1alpha1.StepSucceeded && r.StepEvents:
			emit(corev1.EventTypeNormal, v1alpha1.EventStepSucceeded, "step %q succeeded", step.Name)
		case t.Kind == runstate.StepEnded && step.Phase == v1alpha1.StepFailed:
			emit(corev1.EventTypeWarning, v1alpha1.EventStepFailed, "step %q failed: %s", step.Name, step.Reason)
		case t.Kind == runstate.RunEnded && st.Phase == v1alpha1.PhaseSucceeded:
			emit(corev1.EventTypeNormal, v1alpha1.ReasonSucceeded, "%s", t.Message)
		case t.Kind == runstate.RunEnded && st.Phase == v1alpha1.PhaseCancelled:
			emit(corev1.EventTypeNormal, v1alpha1.ReasonCancelled, "%s", t.Message)
		case t.Kind == runstate.RunEnded:
			emit(corev1.EventTypeWarning, v1alpha1.EventFailed, "%s: %s", t.Reason, t.Message)
		}
	}
}

// recordMetrics records the pass's transitions, like its events, once its status write
// succeeded: the run's end and start, each step's end and each step's handoff (from the
// end of what it waited for to its Job's creation, now). A step pod's start is recorded
// as the pod leaves the cache (podLeft).
func (r *Reconciler) recordMetrics(s *scope, ts []runstate.Transition) {
	run := s.run
	for _, t := range ts {
		switch t.Kind {
		case runstate.RunEnded:
			r.Metrics.RunEnded(run, t.Reason)
		case runstate.RunStarted:
			r.Metrics.RunStarted(run)
		case runstate.StepEnded:
			r.Metrics.StepEnded(run.Namespace, run.Status.Steps[t.Step])
		case runstate.StepStarted:
			r.Metrics.StepStarted(run.Namespace, r.waitedFor(s, t.Step), s.now)
		}
	}
}

// waitedFor is when the last of what step i waited for ended: its dependencies, or the
// clone for a root (runstate.ReadyTime, recorded as the step started).
func (r *Reconciler) waitedFor(s *scope, i int) time.Time {
	if t := s.run.Status.Steps[i].Timing; t != nil && t.ReadyTime != nil {
		return t.ReadyTime.Time
	}
	return time.Time{}
}
