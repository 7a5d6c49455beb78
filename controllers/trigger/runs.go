package trigger

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers"
	"github.com/flow-ci/flow-ci/internal/runstate"
	"github.com/flow-ci/flow-ci/internal/triggerstate"
)

// createRun creates a run of the trigger. A run of that name that exists already is
// the trigger's own when the trigger controls it (by UID) and it builds the same commit:
// then it was created by an earlier pass whose status write was lost, and that is done.
// Any other object of that name is a conflict (false), left alone.
func (r *Reconciler) createRun(ctx context.Context, p *pass, run *v1alpha1.PipelineRun) (bool, error) {
	err := r.Client.Create(ctx, run)
	if err == nil {
		cause := "push"
		if run.Labels[v1alpha1.LabelSchedule] != "" {
			cause = "schedule"
		}
		controllers.ObserveTriggered(run.Namespace, cause)
		p.triggered = append(p.triggered, run.Name)
		log.FromContext(ctx).Info("started a run", "run", run.Name, "branch", run.Spec.Branch, "commit", run.Spec.Revision)
		return true, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return false, fmt.Errorf("creating PipelineRun %s: %w", run.Name, err)
	}
	existing := &v1alpha1.PipelineRun{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(run), existing); err != nil {
		return false, fmt.Errorf("reading PipelineRun %s: %w", run.Name, err)
	}
	ref := metav1.GetControllerOf(existing)
	return ref != nil && ref.UID == p.trig.UID && existing.Spec.Revision == run.Spec.Revision &&
		existing.Spec.Branch == run.Spec.Branch, nil
}

// reconcileRuns records the phase of the trigger's runs that ended, and deletes the
// oldest finished ones beyond the history limits, per branch and per schedule.
func (r *Reconciler) reconcileRuns(ctx context.Context, p *pass) error {
	list := &v1alpha1.PipelineRunList{}
	if err := r.Client.List(ctx, list, client.InNamespace(p.trig.Namespace),
		client.MatchingLabels{v1alpha1.LabelTriggerUID: string(p.trig.UID)}); err != nil {
		return fmt.Errorf("listing the trigger's runs: %w", err)
	}
	phases := map[string]v1alpha1.PipelineRunPhase{}
	groups := map[string][]*v1alpha1.PipelineRun{}
	for i := range list.Items {
		run := &list.Items[i]
		if ref := metav1.GetControllerOf(run); ref == nil || ref.UID != p.trig.UID {
			continue // labelled like ours, but not ours
		}
		phases[run.Name] = run.Status.Phase
		if run.Status.Phase.IsFinished() && run.DeletionTimestamp.IsZero() {
			key := "branch\x00" + run.Spec.Branch
			if s := run.Labels[v1alpha1.LabelSchedule]; s != "" {
				key = "schedule\x00" + s
			}
			groups[key] = append(groups[key], run)
		}
	}
	triggerstate.RecordPhases(&p.trig.Status, phases)
	for _, runs := range groups {
		for _, old := range runstate.BeyondHistory(runs, r.historyLimits(p.trig)) {
			log.FromContext(ctx).Info("deleting a run beyond the trigger's history limit", "deleted", old.Name)
			if err := r.Client.Delete(ctx, old, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("deleting run %s beyond the history limit: %w", old.Name, err)
			}
		}
	}
	return nil
}

func (r *Reconciler) historyLimits(t *v1alpha1.PipelineTrigger) runstate.HistoryLimits {
	l := runstate.HistoryLimits{Succeeded: r.SuccessfulHistoryLimit, Failed: r.FailedHistoryLimit}
	if v := t.Spec.SuccessfulHistoryLimit; v != nil {
		l.Succeeded = int(*v)
	}
	if v := t.Spec.FailedHistoryLimit; v != nil {
		l.Failed = int(*v)
	}
	return l
}
