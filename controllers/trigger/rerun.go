package trigger

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/render"
	"github.com/flow-ci/flow-ci/internal/triggerstate"
)

// reconcileRerun acts on a new ci.flowci.dev/rerun request: it creates the run the
// request asks for, as the trigger's own, so that it reports its commit status like the
// run it repeats. Only a run this trigger controls can be run again. It records the
// request in status.lastHandledRerun when the run exists or the request is refused (with
// an event saying why); a spent run budget leaves it for a later pass.
func (r *Reconciler) reconcileRerun(ctx context.Context, p *pass) error {
	trig := p.trig
	value := trig.Annotations[v1alpha1.AnnotationRerun]
	if value == "" || value == trig.Status.LastHandledRerun || trig.Spec.Suspend {
		return nil
	}
	refuse := func(format string, args ...any) error {
		trig.Status.LastHandledRerun = value
		p.event(corev1.EventTypeWarning, v1alpha1.EventRerunRefused, format, args...)
		return nil
	}
	req, err := triggerstate.ParseRerun(value)
	if err != nil {
		return refuse("%v", err)
	}
	source := &v1alpha1.PipelineRun{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: trig.Namespace, Name: req.Run}, source); err != nil {
		if apierrors.IsNotFound(err) {
			return refuse("no PipelineRun %q to run again", req.Run)
		}
		return fmt.Errorf("reading PipelineRun %s: %w", req.Run, err)
	}
	if ref := metav1.GetControllerOf(source); ref == nil || ref.UID != trig.UID {
		return refuse("PipelineRun %q is not this trigger's run; run it again with flowci rerun, which creates a run of your own", req.Run)
	}
	commit := source.Spec.Revision
	if source.Labels[v1alpha1.LabelPullRequest] != "" && req.Latest {
		return refuse("PipelineRun %q builds a pull request: run its head again without --latest, or push to it", req.Run)
	}
	if req.Latest {
		if b := branchOf(trig, source.Spec.Branch); b != nil && b.Commit != "" {
			commit = b.Commit
		} else {
			return refuse("the trigger tracks no head of branch %q to build", source.Spec.Branch)
		}
	}
	name := render.RerunName(trig, source, req.ID, req.Latest)
	switch done, err := r.createRun(ctx, p, render.Rerun(trig, name, source, commit)); {
	case err != nil:
		return err
	case done == runNoBudget:
		setReady(trig, metav1.ConditionFalse, v1alpha1.ReasonRunBudgetExhausted, r.budgetMessage())
		p.wakeAt(p.now.Add(budgetRetry))
		return nil
	case done == runConflict:
		return refuse("PipelineRun %s exists and is not this trigger's", name)
	}
	trig.Status.LastHandledRerun = value
	return nil
}

func branchOf(trig *v1alpha1.PipelineTrigger, name string) *v1alpha1.TriggerBranchStatus {
	for i := range trig.Status.Branches {
		if trig.Status.Branches[i].Name == name {
			return &trig.Status.Branches[i]
		}
	}
	return nil
}
