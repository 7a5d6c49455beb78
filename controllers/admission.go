package controllers

import (
	"context"
	"fmt"
	"maps"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/render"
)

// AnnotationReplacedBy names the newer run that cancelled this one (concurrencyPolicy
// Replace).
const AnnotationReplacedBy = "flowci.dev/replaced-by"

// reconcileAdmission decides when a new run may start. It applies the run's
// concurrencyPolicy against older active runs of the same repository and branch in the
// namespace, then the operator's --max-active-runs. A run that must wait is Queued with
// its position; once admitted it gets its startTime, from which spec.timeout counts.
func (r *PipelineRunReconciler) reconcileAdmission(ctx context.Context, s *scope) error {
	run := s.run
	if run.Status.StartTime != nil {
		return nil
	}
	if run.Spec.Cancel {
		setFinished(&run.Status, civ1alpha1.PhaseCancelled, civ1alpha1.ReasonCancelled, "cancelled before it started", metav1.NewTime(s.now))
		return nil
	}
	group, err := r.groupOf(ctx, run)
	if err != nil {
		return err
	}
	var older []*civ1alpha1.PipelineRun
	for _, o := range group {
		if o.UID != run.UID && !o.Status.Phase.IsFinished() && o.DeletionTimestamp.IsZero() && createdBefore(o, run) {
			older = append(older, o)
		}
	}
	switch run.Spec.ConcurrencyPolicy {
	case civ1alpha1.ConcurrencyForbid:
		if len(older) > 0 {
			return permanent(civ1alpha1.ReasonConcurrencyForbidden,
				"run %q of the same repository and branch is active (concurrencyPolicy: Forbid)", older[0].Name)
		}
	case civ1alpha1.ConcurrencyReplace:
		for _, o := range older {
			if err := r.replace(ctx, o, run); err != nil {
				return err
			}
		}
	case civ1alpha1.ConcurrencyQueue:
		if len(older) > 0 {
			queue(s, len(older), fmt.Sprintf("waiting for %d older run(s) of this repository and branch (concurrencyPolicy: Queue)", len(older)))
			return nil
		}
	}
	if limit := r.Lifecycle.MaxActiveRuns; limit > 0 {
		active, waiting, err := r.activeRuns(ctx, run)
		if err != nil {
			return err
		}
		if active >= limit || waiting > 0 {
			queue(s, waiting+1, fmt.Sprintf("waiting: %d of at most %d runs are active (--max-active-runs)", active, limit))
			return nil
		}
	}
	now := metav1.NewTime(s.now)
	run.Status.StartTime = &now
	run.Status.Phase = civ1alpha1.PhasePending
	run.Status.QueuePosition = 0
	apimeta.SetStatusCondition(&run.Status.Conditions, metav1.Condition{
		Type: civ1alpha1.ConditionSucceeded, Status: metav1.ConditionUnknown,
		Reason: civ1alpha1.ReasonPending, Message: "resolving the commit and reading the pipeline",
		ObservedGeneration: run.Generation,
	})
	return nil
}

func queue(s *scope, position int, msg string) {
	st := &s.run.Status
	st.Phase = civ1alpha1.PhaseQueued
	st.QueuePosition = int32(position)
	apimeta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: civ1alpha1.ConditionSucceeded, Status: metav1.ConditionUnknown,
		Reason: civ1alpha1.ReasonQueued, Message: msg, ObservedGeneration: s.run.Generation,
	})
	s.wait = true
}

// replace cancels an older run of the group on behalf of a newer one.
func (r *PipelineRunReconciler) replace(ctx context.Context, old, by *civ1alpha1.PipelineRun) error {
	if old.Spec.Cancel {
		return nil
	}
	patch := client.MergeFrom(old.DeepCopy())
	old.Spec.Cancel = true
	if old.Annotations == nil {
		old.Annotations = map[string]string{}
	}
	old.Annotations[AnnotationReplacedBy] = by.Name
	if err := r.Client.Patch(ctx, old, patch); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("cancelling run %s replaced by this one: %w", old.Name, err)
	}
	return nil
}

// groupOf lists the runs of the run's repository and branch in its namespace. The group
// is computed from each run's spec, so a run the controller has not labelled yet counts.
func (r *PipelineRunReconciler) groupOf(ctx context.Context, run *civ1alpha1.PipelineRun) ([]*civ1alpha1.PipelineRun, error) {
	list := &civ1alpha1.PipelineRunList{}
	if err := r.Client.List(ctx, list, client.InNamespace(run.Namespace)); err != nil {
		return nil, fmt.Errorf("listing runs: %w", err)
	}
	want := render.GroupLabels(run.Spec.RepoURL, run.Spec.Branch)
	var out []*civ1alpha1.PipelineRun
	for i := range list.Items {
		o := &list.Items[i]
		if maps.Equal(render.GroupLabels(o.Spec.RepoURL, o.Spec.Branch), want) {
			out = append(out, o)
		}
	}
	return out, nil
}

// activeRuns counts admitted, unfinished runs everywhere the operator watches, and the
// runs created before this one that still wait to be admitted.
func (r *PipelineRunReconciler) activeRuns(ctx context.Context, run *civ1alpha1.PipelineRun) (active, waiting int, err error) {
	list := &civ1alpha1.PipelineRunList{}
	if err := r.Client.List(ctx, list); err != nil {
		return 0, 0, fmt.Errorf("listing runs: %w", err)
	}
	for i := range list.Items {
		o := &list.Items[i]
		switch {
		case o.UID == run.UID, o.Status.Phase.IsFinished(), !o.DeletionTimestamp.IsZero():
		case o.Status.StartTime != nil:
			active++
		case createdBefore(o, run):
			waiting++
		}
	}
	return active, waiting, nil
}

// wakeQueued enqueues every Queued run when another run ends or goes away, since that
// may free the place they wait for. Only those transitions list runs, so a burst of
// status updates costs nothing here.
func (r *PipelineRunReconciler) wakeQueued(ctx context.Context, changed client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	list := &civ1alpha1.PipelineRunList{}
	if err := r.Client.List(ctx, list); err != nil {
		return
	}
	for _, o := range list.Items {
		if o.Status.Phase == civ1alpha1.PhaseQueued && o.UID != changed.GetUID() {
			q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.Namespace, Name: o.Name}})
		}
	}
}
