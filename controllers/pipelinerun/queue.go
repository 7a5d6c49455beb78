package pipelinerun

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/render"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

// runState is the IndexRunState key of a run.
func runState(run *v1alpha1.PipelineRun) string {
	if run.Status.Phase.IsFinished() {
		return v1alpha1.IndexFinished
	}
	return v1alpha1.IndexUnfinished
}

// unfinished lists the runs that have not finished, everywhere the operator watches,
// through the cache's index: what queueing costs grows with the runs that wait or
// run, never with the history kept.
func (r *Reconciler) unfinished(ctx context.Context) ([]v1alpha1.PipelineRun, error) {
	list := &v1alpha1.PipelineRunList{}
	if err := r.Client.List(ctx, list, client.UnsafeDisableDeepCopy, client.MatchingFields{v1alpha1.IndexRunState: v1alpha1.IndexUnfinished}); err != nil {
		return nil, fmt.Errorf("listing unfinished runs: %w", err)
	}
	return list.Items, nil
}

// candidates are the unfinished runs competing for --max-active-runs, with the index
// in runs of each (-1 for run itself, added when the cache lacks it yet), how many of
// them are active, and which is run.
func candidates(runs []v1alpha1.PipelineRun, run *v1alpha1.PipelineRun) (cs []runstate.Candidate, at []int, active, self int) {
	self = -1
	for i := range runs {
		o := &runs[i]
		if o.Status.Phase.IsFinished() || !o.DeletionTimestamp.IsZero() {
			continue
		}
		if run != nil && o.UID == run.UID {
			self = len(cs)
		}
		cs = append(cs, runstate.Candidate{Namespace: o.Namespace, Name: o.Name, Created: o.CreationTimestamp.Time, Active: o.Status.StartTime != nil})
		at = append(at, i)
		if o.Status.StartTime != nil {
			active++
		}
	}
	if run != nil && self < 0 {
		self = len(cs)
		cs = append(cs, runstate.Candidate{Namespace: run.Namespace, Name: run.Name, Created: run.CreationTimestamp.Time})
		at = append(at, -1)
	}
	return cs, at, active, self
}

// fairPosition counts the admitted, unfinished runs everywhere the operator watches, and
// the run's place (from 1) in the fair queue of runs waiting for a slot.
func (r *Reconciler) fairPosition(ctx context.Context, run *v1alpha1.PipelineRun) (active, position int, err error) {
	runs, err := r.unfinished(ctx)
	if err != nil {
		return 0, 0, err
	}
	cs, _, active, self := candidates(runs, run)
	for n, i := range runstate.FairQueue(cs) {
		if i == self {
			return active, n + 1, nil
		}
	}
	return active, len(cs), nil
}

// wakeQueued enqueues the Queued runs that the end or removal of changed may let
// start: the older Queued runs of its repository and branch in its namespace (the
// oldest of them starts), and, under --max-active-runs, the runs at the head of the
// fair queue, as many as there are free places. The others keep waiting without a
// pass, and their status, which says what they wait for and no position, without a
// write.
func (r *Reconciler) wakeQueued(ctx context.Context, changed *v1alpha1.PipelineRun, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	runs, err := r.unfinished(ctx)
	if err != nil {
		return
	}
	wake := func(o *v1alpha1.PipelineRun) {
		q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.Namespace, Name: o.Name}})
	}
	group := render.RunGroupKey(changed)
	for i := range runs {
		o := &runs[i]
		if o.Status.Phase == v1alpha1.PhaseQueued && o.UID != changed.UID && o.Namespace == changed.Namespace &&
			render.RunGroupKey(o) == group {
			wake(o)
		}
	}
	limit := r.Lifecycle.MaxActiveRuns
	if limit <= 0 {
		return
	}
	cs, at, active, _ := candidates(runs, nil)
	free := max(limit-active, 1)
	for _, i := range runstate.FairQueue(cs) {
		if free == 0 {
			return
		}
		if o := &runs[at[i]]; o.Status.Phase == v1alpha1.PhaseQueued && o.UID != changed.UID {
			wake(o)
			free--
		}
	}
}
