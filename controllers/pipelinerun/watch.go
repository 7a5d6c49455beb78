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

// Priorities in the workqueue: an outcome (a Job that ended) is a handoff waiting to
// happen and goes first; a finished definition fetch starts a run; new runs and
// everything else come after, and a pod a watchdog must judge last: watchdogs act in
// minutes.
const (
	priorityOutcome  = 10
	priorityFetched  = 5
	priorityWatchdog = -5
	// priorityHold: a clone pod bound to its node starts the run's hold (hold.go)
	// before the clone ends, which takes seconds; bound steps may end it.
	priorityHold = priorityFetched
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

// jobEvents maps a Job to its run when it ended (runstate.JobOutcome: a success at
// SuccessCriteriaMet, so Complete after it is no news) or is going away. Its creation
// (the pass that created it knows), its progress and its retries do not reconcile: a
// step's attempts are written with its outcome.
func jobEvents() handler.TypedEventHandler[client.Object, reconcile.Request] {
	return handler.Funcs{
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q queue) {
			o, n := e.ObjectOld.(*batchv1.Job), e.ObjectNew.(*batchv1.Job)
			if runstate.JobOutcome(o) != runstate.JobOutcome(n) || o.DeletionTimestamp.IsZero() != n.DeletionTimestamp.IsZero() {
				toOwner(n, q, priorityOutcome)
			}
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, q queue) { toOwner(e.Object, q, priorityOutcome) },
	}
}

// podEvents reconciles a run when its clone or step pod is bound (its hold starts or may
// end), and, at low priority, when a pod of it enters a state a watchdog acts on
// (runstate.Watchdogs.Watch: not schedulable, an image or config it cannot get), so that
// its deadline is set. Nothing else a pod reports moves a run: its end reaches status
// through its Job, and the deadlines are timers, not events. A pod leaving the cache is
// noted (podLeft).
func (r *Reconciler) podEvents() handler.TypedEventHandler[client.Object, reconcile.Request] {
	return handler.Funcs{
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, _ queue) {
			if pod, ok := e.Object.(*corev1.Pod); ok {
				r.podLeft(ctx, pod)
			}
		},
		CreateFunc: func(_ context.Context, e event.CreateEvent, q queue) {
			if pod, ok := e.Object.(*corev1.Pod); ok && r.podBound(nil, pod) {
				if req, ok := podToRun(pod); ok {
					enqueue(q, req, priorityHold)
				}
			}
		},
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q queue) {
			o, n := e.ObjectOld.(*corev1.Pod), e.ObjectNew.(*corev1.Pod)
			if r.podBound(o, n) {
				if req, ok := podToRun(n); ok {
					enqueue(q, req, priorityHold)
				}
				return
			}
			if w := runstate.Watched(n); w != "" && w != runstate.Watched(o) {
				if req, ok := podToRun(n); ok {
					enqueue(q, req, priorityWatchdog)
				}
			}
		},
	}
}

// podBound says a clone or step pod was just bound to a node (old is nil for a pod
// created bound), which matters only when runs keep a hold: a bound clone starts it, and
// bound steps may end it.
func (r *Reconciler) podBound(old, pod *corev1.Pod) bool {
	c := pod.Labels[v1alpha1.LabelComponent]
	return r.Render.StepPriorityClass != "" && (c == v1alpha1.ComponentClone || c == v1alpha1.ComponentStep) &&
		pod.Spec.NodeName != "" && (old == nil || old.Spec.NodeName == "")
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
