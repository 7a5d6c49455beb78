package trigger

import (
	"context"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// +kubebuilder:rbac:groups=ci.flowci.dev,resources=pipelinetriggers,verbs=get;list;watch
// +kubebuilder:rbac:groups=ci.flowci.dev,resources=pipelinetriggers/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=ci.flowci.dev,resources=pipelinetriggers/finalizers,verbs=update
// +kubebuilder:rbac:groups=ci.flowci.dev,resources=pipelinetriggers,verbs=trigger
// +kubebuilder:rbac:groups=ci.flowci.dev,resources=pipelineruns,verbs=create
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get

// SetupWithManager registers the controller and its poll pool. A trigger reconciles when
// its spec or annotations change (not on its own status writes), when its poll is done,
// and when one of its runs ends or goes away.
func (r *Reconciler) SetupWithManager(mgr manager.Manager, opts controller.Options) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if r.Pollers <= 0 {
		r.Pollers = DefaultPollers
	}
	r.polls = newPoller(r.Pollers)
	polled := handler.TypedFuncs[*v1alpha1.PipelineTrigger, reconcile.Request]{
		GenericFunc: func(_ context.Context, e event.TypedGenericEvent[*v1alpha1.PipelineTrigger], q queue) {
			q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(e.Object)})
		},
	}
	runEnded := predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return true },
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld.(*v1alpha1.PipelineRun), e.ObjectNew.(*v1alpha1.PipelineRun)
			return o.Status.Phase != n.Status.Phase && n.Status.Phase.IsFinished()
		},
	}
	return builder.ControllerManagedBy(mgr).
		Named("pipelinetrigger").
		For(&v1alpha1.PipelineTrigger{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&v1alpha1.PipelineRun{}, builder.WithPredicates(runEnded)).
		WatchesRawSource(source.TypedChannel(r.polls.wake, polled)).
		WithOptions(opts).
		Complete(r)
}

type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]
