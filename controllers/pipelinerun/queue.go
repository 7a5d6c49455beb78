package pipelinerun

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

// fairPosition counts the admitted, unfinished runs everywhere the operator watches, and
// the run's place (from 1) in the fair queue of runs waiting for a slot.
func (r *Reconciler) fairPosition(ctx context.Context, run *v1alpha1.PipelineRun) (active, position int, err error) {
	list := &v1alpha1.PipelineRunList{}
	if err := r.Client.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return 0, 0, fmt.Errorf("listing runs: %w", err)
	}
	var cs []runstate.Candidate
	self := -1
	for i := range list.Items {
		o := &list.Items[i]
		if o.Status.Phase.IsFinished() || !o.DeletionTimestamp.IsZero() {
			continue
		}
		if o.UID == run.UID {
			self = len(cs)
		}
		cs = append(cs, runstate.Candidate{Namespace: o.Namespace, Name: o.Name, Created: o.CreationTimestamp.Time, Active: o.Status.StartTime != nil})
		if o.Status.StartTime != nil {
			active++
		}
	}
	if self < 0 { // not in the cache yet
		self = len(cs)
		cs = append(cs, runstate.Candidate{Namespace: run.Namespace, Name: run.Name, Created: run.CreationTimestamp.Time})
	}
	for n, i := range runstate.FairQueue(cs) {
		if i == self {
			return active, n + 1, nil
		}
	}
	return active, len(cs), nil
}

// wakeQueued enqueues every Queued run when another run ends or goes away, since that
// may free the place they wait for. Only those transitions list runs, so a burst of
// status updates costs nothing here.
func (r *Reconciler) wakeQueued(ctx context.Context, changed client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	list := &v1alpha1.PipelineRunList{}
	if err := r.Client.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return
	}
	for _, o := range list.Items {
		if o.Status.Phase == v1alpha1.PhaseQueued && o.UID != changed.GetUID() {
			q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.Namespace, Name: o.Name}})
		}
	}
}
