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
	"github.com/flow-ci/flow-ci/internal/runstate"
	"github.com/flow-ci/flow-ci/internal/triggerstate"
)

// reconcileRerun acts on a new ci.flowci.dev/rerun request: it creates the run the
// request asks for (a rerun, or a resume in the kept workspace), as the trigger's own,
// so that it reports its commit status like the run it repeats. Only a run this trigger
// controls can be run again. It records the request in status.lastHandledRerun when the
// run exists or the request is refused (with an event saying why); a spent run budget
// leaves it for a later pass.
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
	if why := req.Refusal(source); why != "" {
		return refuse("%s", why)
	}
	if req.Resume {
		switch why, err := r.workspaceRefusal(ctx, source); {
		case err != nil:
			return err
		case why != "":
			return refuse("%s", why)
		}
	}
	run, why := requestedRun(trig, source, req)
	if why != "" {
		return refuse("%s", why)
	}
	switch done, err := r.createRun(ctx, p, run); {
	case err != nil:
		return err
	case done == runNoBudget:
		setReady(trig, metav1.ConditionFalse, v1alpha1.ReasonRunBudgetExhausted, r.budgetMessage())
		p.wakeAt(p.now.Add(budgetRetry))
		return nil
	case done == runConflict:
		return refuse("PipelineRun %s exists and is not this trigger's", run.Name)
	}
	trig.Status.LastHandledRerun = value
	return nil
}

// workspaceRefusal says why source's workspace cannot be resumed, or "": it must still
// be there and source's (runstate.WorkspaceRefusal), or the resume would fail once
// created and post a failure over the commit status, maybe over its first resume's
// success. It reads the claim from the API server: triggers watch no claims, and a
// resume request is rare.
func (r *Reconciler) workspaceRefusal(ctx context.Context, source *v1alpha1.PipelineRun) (string, error) {
	pvc := &corev1.PersistentVolumeClaim{}
	switch err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: source.Namespace, Name: render.WorkspaceName(source)}, pvc); {
	case apierrors.IsNotFound(err):
		pvc = nil
	case err != nil:
		return "", fmt.Errorf("reading the workspace of PipelineRun %s: %w", source.Name, err)
	}
	return runstate.WorkspaceRefusal(source, pvc, ""), nil
}

// requestedRun renders the run req asks for, or says why there is none. Its name is a
// function of the request (render.RerunName, render.ResumeName), so the CLI that asked
// knows it and a request is acted on once.
func requestedRun(trig *v1alpha1.PipelineTrigger, source *v1alpha1.PipelineRun, req triggerstate.RerunRequest) (*v1alpha1.PipelineRun, string) {
	switch {
	case req.Resume:
		return render.Resume(trig, render.ResumeName(trig, source, req.ID, req.From), source, req.From), ""
	case req.Latest:
		b := branchOf(trig, source.Spec.Branch)
		if b == nil || b.Commit == "" {
			return nil, fmt.Sprintf("the trigger tracks no head of branch %q to build", source.Spec.Branch)
		}
		return render.Rerun(trig, render.RerunName(trig, source, req.ID, true), source, b.Commit), ""
	}
	return render.Rerun(trig, render.RerunName(trig, source, req.ID, false), source, source.Spec.Revision), ""
}

func branchOf(trig *v1alpha1.PipelineTrigger, name string) *v1alpha1.TriggerBranchStatus {
	for i := range trig.Status.Branches {
		if trig.Status.Branches[i].Name == name {
			return &trig.Status.Branches[i]
		}
	}
	return nil
}
