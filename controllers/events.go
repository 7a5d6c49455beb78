package controllers

import (
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
)

// emitEvents records one event per transition between two statuses of a run, so that
// `kubectl describe fpr` tells the story. A failed run's event is reason Failed, with the
// condition's specific reason leading its note.
func (r *PipelineRunReconciler) emitEvents(before, after *civ1alpha1.PipelineRun) {
	if r.Recorder == nil {
		return
	}
	emit := func(eventType, reason, note string, args ...any) {
		r.Recorder.Eventf(after, nil, eventType, reason, "Reconcile", note, args...)
	}
	old, cur := before.Status, after.Status
	if old.Phase != cur.Phase && cur.Phase == civ1alpha1.PhaseQueued {
		emit(corev1.EventTypeNormal, civ1alpha1.ReasonQueued, "queued at position %d", cur.QueuePosition)
	}
	if old.Phase != cur.Phase && cur.Phase == civ1alpha1.PhaseRunning {
		emit(corev1.EventTypeNormal, civ1alpha1.EventStarted, "building %s at %s (pipeline %q, %d steps)",
			after.Spec.Branch, cur.ShortCommit, cur.PipelineName, len(cur.Steps))
	}
	for i, s := range cur.Steps {
		prev := civ1alpha1.StepPending
		if i < len(old.Steps) {
			prev = old.Steps[i].Phase
		}
		if prev == s.Phase {
			continue
		}
		switch s.Phase {
		case civ1alpha1.StepRunning:
			emit(corev1.EventTypeNormal, civ1alpha1.EventStepStarted, "step %q started (Job %s)", s.Name, s.JobName)
		case civ1alpha1.StepSucceeded:
			emit(corev1.EventTypeNormal, civ1alpha1.EventStepSucceeded, "step %q succeeded", s.Name)
		case civ1alpha1.StepFailed:
			emit(corev1.EventTypeWarning, civ1alpha1.EventStepFailed, "step %q failed: %s", s.Name, s.Reason)
		}
	}
	if old.Phase == cur.Phase || !cur.Phase.IsFinished() {
		return
	}
	c := apimeta.FindStatusCondition(cur.Conditions, civ1alpha1.ConditionSucceeded)
	if c == nil {
		return
	}
	switch cur.Phase {
	case civ1alpha1.PhaseSucceeded:
		emit(corev1.EventTypeNormal, civ1alpha1.ReasonSucceeded, "%s", c.Message)
		return
	case civ1alpha1.PhaseCancelled:
		emit(corev1.EventTypeNormal, civ1alpha1.ReasonCancelled, "%s", c.Message)
		return
	}
	emit(corev1.EventTypeWarning, civ1alpha1.EventFailed, "%s: %s", c.Reason, c.Message)
}
