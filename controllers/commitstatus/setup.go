package commitstatus

import (
	"context"
	"time"

	"k8s.io/client-go/util/workqueue"
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

// +kubebuilder:rbac:groups=ci.flowci.dev,resources=pipelineruns,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=ci.flowci.dev,resources=pipelinetriggers,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// SetupWithManager registers the reporter: triggered runs reconcile when they are
// created and when their phase changes, and when a post of theirs is done; at most
// Concurrency posts run at once, fairly between namespaces, and a failed post is retried
// with backoff from 1s to 5m (opts.RateLimiter, unless set).
func (r *Reconciler) SetupWithManager(mgr manager.Manager, opts controller.Options) error {
	if r.Concurrency <= 0 {
		r.Concurrency = DefaultConcurrency
	}
	r.posts = newPoster(r.Concurrency)
	if opts.RateLimiter == nil {
		opts.RateLimiter = workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](time.Second, 5*time.Minute)
	}
	triggered := predicate.NewPredicateFuncs(func(o client.Object) bool {
		_, ok := o.GetLabels()[v1alpha1.LabelTriggerUID]
		return ok
	})
	phaseChanged := predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			return e.ObjectOld.(*v1alpha1.PipelineRun).Status.Phase != e.ObjectNew.(*v1alpha1.PipelineRun).Status.Phase
		},
	}
	posted := handler.TypedFuncs[*v1alpha1.PipelineRun, reconcile.Request]{
		GenericFunc: func(_ context.Context, e event.TypedGenericEvent[*v1alpha1.PipelineRun], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(e.Object)})
		},
	}
	return builder.ControllerManagedBy(mgr).
		Named("commitstatus").
		For(&v1alpha1.PipelineRun{}, builder.WithPredicates(triggered, phaseChanged)).
		WatchesRawSource(source.TypedChannel(r.posts.wake, posted)).
		WithOptions(opts).
		Complete(r)
}
