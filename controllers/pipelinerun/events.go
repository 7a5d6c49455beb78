package pipelinerun

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

// recordEvents records an event for the run's transitions and failures of a pass whose
// status was written, so that `kubectl describe fpr` tells the story; steps' starts and
// successes are in status, and in events only with StepEvents. A failed run's event is
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
			emit(corev1.EventTypeNormal, v1alpha1.ReasonQueued, "queued at position %d", st.QueuePosition)
		case t.Kind == runstate.RunStarted:
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
