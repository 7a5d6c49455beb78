package pipelinerun

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/render"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

// reconcileAdmission decides when a new run may start. It applies the run's
// concurrencyPolicy against older active runs of the same repository and branch in the
// namespace, then the operator's --max-active-runs. It may set the run's branch, queue
// it with what it waits for (and is then done: the run waits), admit it (its startTime, from
// which spec.timeout counts), or end it (cancelled before it started: done; Forbid: an
// error from permanent). An admitted run passes through.
func (r *Reconciler) reconcileAdmission(ctx context.Context, s *scope) (bool, error) {
	run := s.run
	if run.Status.StartTime != nil {
		return false, nil
	}
	runstate.NameBranch(run)
	now := metav1.NewTime(s.now)
	if job := r.fetches.state(run.UID); job != nil {
		now = metav1.NewTime(job.admitted) // admitted in a pass whose status was not written
	}
	if run.Spec.Cancel {
		runstate.End(run, runstate.Ending{Phase: v1alpha1.PhaseCancelled, Reason: v1alpha1.ReasonCancelled, Message: "cancelled before it started"}, now)
		return true, nil
	}
	group, err := r.groupOf(ctx, run)
	if err != nil {
		return false, err
	}
	var older []*v1alpha1.PipelineRun
	for _, o := range group {
		if o.UID != run.UID && !o.Status.Phase.IsFinished() && o.DeletionTimestamp.IsZero() && runstate.CreatedBefore(o, run) {
			older = append(older, o)
		}
	}
	switch run.Spec.ConcurrencyPolicy {
	case v1alpha1.ConcurrencyForbid:
		if len(older) > 0 {
			return false, permanent(v1alpha1.ReasonConcurrencyForbidden,
				"run %q of the same repository and branch is active (concurrencyPolicy: Forbid)", older[0].Name)
		}
	case v1alpha1.ConcurrencyReplace:
		bound := replaceBound(run, group)
		for _, o := range older {
			if bound == nil || !runstate.CreatedBefore(o, bound) {
				continue
			}
			if err := r.replace(ctx, o, run); err != nil {
				return false, err
			}
		}
	case v1alpha1.ConcurrencyQueue:
		if len(older) > 0 {
			runstate.Queue(run, "waiting for the older runs of this repository and branch to end (concurrencyPolicy: Queue)")
			return true, nil
		}
	}
	if limit := r.Lifecycle.MaxActiveRuns; limit > 0 {
		active, position, err := r.fairPosition(ctx, run)
		if err != nil {
			return false, err
		}
		if position > limit-active {
			runstate.Queue(run, fmt.Sprintf("waiting for one of the %d places of --max-active-runs, shared fairly between namespaces", limit))
			return true, nil
		}
	}
	runstate.Admit(run, now)
	return false, nil
}

// replaceBound is the run whose creation bounds what a run replaces: itself, or for a
// run that resumes or repeats (a trigger's rerun) an earlier one, that earlier run, so
// it never cancels a run newer than the build it continues; nil, replacing nothing,
// when that run is gone.
func replaceBound(run *v1alpha1.PipelineRun, group []*v1alpha1.PipelineRun) *v1alpha1.PipelineRun {
	earlier := run.Labels[v1alpha1.LabelRerunOf]
	if run.Spec.ResumeFrom != nil {
		earlier = run.Spec.ResumeFrom.Run
	}
	if earlier == "" {
		return run
	}
	for _, o := range group {
		if o.Name == earlier {
			return o
		}
	}
	return nil
}

// replace cancels an older run of the group on behalf of a newer one.
func (r *Reconciler) replace(ctx context.Context, old, by *v1alpha1.PipelineRun) error {
	if old.Spec.Cancel {
		return nil
	}
	old = old.DeepCopy() // a shared copy from the cache
	patch := client.MergeFrom(old.DeepCopy())
	old.Spec.Cancel = true
	if old.Annotations == nil {
		old.Annotations = map[string]string{}
	}
	old.Annotations[v1alpha1.AnnotationReplacedBy] = by.Name
	if err := r.Client.Patch(ctx, old, patch); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("cancelling run %s replaced by this one: %w", old.Name, err)
	}
	return nil
}

// groupOf lists the runs of the run's repository and branch in its namespace, through
// the cache's group index; the group comes from each run's spec.
func (r *Reconciler) groupOf(ctx context.Context, run *v1alpha1.PipelineRun) ([]*v1alpha1.PipelineRun, error) {
	list := &v1alpha1.PipelineRunList{}
	err := r.Client.List(ctx, list, client.InNamespace(run.Namespace), client.UnsafeDisableDeepCopy,
		client.MatchingFields{v1alpha1.IndexRunGroup: render.RunGroupKey(run)})
	if err != nil {
		return nil, fmt.Errorf("listing runs: %w", err)
	}
	out := make([]*v1alpha1.PipelineRun, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out, nil
}
