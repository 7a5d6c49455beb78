package pipelinerun

import (
	"context"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

// Priorities in the workqueue: an outcome (a Job that ended, a pod a watchdog must see)
// is a handoff waiting to happen and goes first; a finished definition fetch starts a
// run; new runs and everything else come after.
const (
	priorityOutcome = 10
	priorityFetched = 5
)

type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]

// enqueue adds req at priority p when the queue is controller-runtime's priority queue.
func enqueue(q queue, req reconcile.Request, p int) {
	if pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); ok {
		pq.AddWithOpts(priorityqueue.AddOpts{Priority: &p}, req)
		return
	}
	q.Add(req)
}

// runEvents reconciles a run when something about it changed that was not this
// controller's own status write: one pass per handoff, not one per write. An update
// that is our own write still reconciles when a pass was deferred waiting for it.
func (r *Reconciler) runEvents() handler.TypedEventHandler[client.Object, reconcile.Request] {
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q queue) {
			q.Add(requestFor(e.Object))
		},
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q queue) {
			o, n := e.ObjectOld.(*v1alpha1.PipelineRun), e.ObjectNew.(*v1alpha1.PipelineRun)
			key := requestFor(n)
			ours, wake := r.written.event(key.NamespacedName, n.ResourceVersion)
			switch {
			case wake:
				// The deferred pass was most likely a handoff: it keeps its place ahead.
				enqueue(q, key, priorityOutcome)
			case o.Generation != n.Generation, !o.DeletionTimestamp.Equal(n.DeletionTimestamp),
				!equality.Semantic.DeepEqual(o.Annotations, n.Annotations):
				q.Add(key)
			case !ours && !equality.Semantic.DeepEqual(o.Status, n.Status):
				q.Add(key) // someone else wrote the status
			}
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, q queue) {
			r.written.forget(requestFor(e.Object).NamespacedName)
		},
	}
}

// jobEvents maps a Job to its run when the Job ended, its attempts changed or it is
// going away; its creation (the pass that created it knows) and progress updates do not
// reconcile.
func jobEvents() handler.TypedEventHandler[client.Object, reconcile.Request] {
	return handler.Funcs{
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q queue) {
			o, n := e.ObjectOld.(*batchv1.Job), e.ObjectNew.(*batchv1.Job)
			if runstate.JobOutcome(o) != runstate.JobOutcome(n) || o.Status.Failed != n.Status.Failed ||
				o.DeletionTimestamp.IsZero() != n.DeletionTimestamp.IsZero() {
				toOwner(n, q, priorityOutcome)
			}
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, q queue) { toOwner(e.Object, q, priorityOutcome) },
	}
}

// podEvents reconciles a run when a pending pod of it shows what the watchdogs judge
// (a waiting reason, the scheduler's verdict). Everything else a pod reports reaches
// status through its Job; the watchdogs' deadlines are timers, not events.
func podEvents() handler.TypedEventHandler[client.Object, reconcile.Request] {
	return handler.Funcs{
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q queue) {
			o, n := e.ObjectOld.(*corev1.Pod), e.ObjectNew.(*corev1.Pod)
			if n.Status.Phase == corev1.PodPending && watchdogView(o) != watchdogView(n) {
				if req, ok := podToRun(n); ok {
					enqueue(q, req, priorityOutcome)
				}
			}
		},
	}
}

// watchdogView is what of a pod the watchdogs look at.
func watchdogView(p *corev1.Pod) string {
	v := string(p.Status.Phase)
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			v += "|" + string(c.Status) + c.Reason
		}
	}
	for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, cs := range list {
			if w := cs.State.Waiting; w != nil {
				v += "|" + w.Reason
			}
		}
	}
	return v
}

// toOwner enqueues the run that controls o.
func toOwner(o client.Object, q queue, p int) {
	for _, ref := range o.GetOwnerReferences() {
		if ref.Controller != nil && *ref.Controller && ref.Kind == "PipelineRun" && ref.APIVersion == v1alpha1.GroupVersion.String() {
			enqueue(q, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: ref.Name}}, p)
		}
	}
}

func requestFor(o client.Object) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}}
}

// podToRun maps a pod to its run by the run-name annotation render puts on every pod.
func podToRun(o client.Object) (reconcile.Request, bool) {
	name := o.GetAnnotations()[v1alpha1.AnnotationRunName]
	if name == "" {
		return reconcile.Request{}, false
	}
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}, true
}
