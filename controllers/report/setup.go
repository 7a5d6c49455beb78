package report

import (
	"time"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// +kubebuilder:rbac:groups=ci.flowci.dev,resources=pipelineruns,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=ci.flowci.dev,resources=pipelinetriggers,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// SetupWithManager registers the reporter: triggered runs reconcile when they are
// created and when their phase changes; at most concurrency posts run at once, and a
// failed post is retried with backoff from 1s to 5m.
func (r *Reconciler) SetupWithManager(mgr manager.Manager, concurrency int) error {
	return r.setup(mgr, concurrency, false)
}

// setup registers the controller; tests that run several managers skip the name check.
func (r *Reconciler) setup(mgr manager.Manager, concurrency int, skipNameValidation bool) error {
	if r.Now == nil {
		r.Now = time.Now
	}
	if concurrency <= 0 {
		concurrency = DefaultConcurrency
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
	return builder.ControllerManagedBy(mgr).
		Named("commitstatus").
		For(&v1alpha1.PipelineRun{}, builder.WithPredicates(triggered, phaseChanged)).
		WithOptions(controller.Options{
			SkipNameValidation:      &skipNameValidation,
			MaxConcurrentReconciles: concurrency,
			RateLimiter:             workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](time.Second, 5*time.Minute),
		}).
		Complete(r)
}
