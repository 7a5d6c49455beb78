package pipelinerun

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/render"
)

// +kubebuilder:rbac:groups=ci.flowci.dev,resources=pipelineruns,verbs=get;list;watch;patch;delete
// +kubebuilder:rbac:groups=ci.flowci.dev,resources=pipelineruns/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=pods/log,verbs=get
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;create
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// SetupWithManager registers the controller and its index. Children are watched through
// the cache, which only holds objects carrying the run-UID label (controllers.CacheOptions).
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr manager.Manager, opts controller.Options) error {
	err := mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.PipelineRun{}, v1alpha1.IndexRunGroup, func(o client.Object) []string {
		run := o.(*v1alpha1.PipelineRun)
		return []string{render.GroupKey(run.Spec.RepoURL, run.Spec.Branch)}
	})
	if err != nil {
		return fmt.Errorf("indexing runs by group: %w", err)
	}
	if opts.RateLimiter == nil {
		// Transient errors (a Secret not applied yet, a flaky git server) retry with
		// backoff capped at 30s, not the default 16 minutes: runs are short-lived.
		opts.RateLimiter = workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](100*time.Millisecond, 30*time.Second)
	}
	return builder.ControllerManagedBy(mgr).
		For(&v1alpha1.PipelineRun{}).
		Owns(&batchv1.Job{}).
		Owns(&corev1.PersistentVolumeClaim{}).
		// A step's pod carries the exit code and log tail; its Job owns it, so map it by
		// the run-name annotation render puts on every pod.
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(podToRun)).
		// A run that ends or goes away may free the place a Queued run waits for.
		Watches(&v1alpha1.PipelineRun{}, handler.Funcs{
			UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				oldRun, newRun := e.ObjectOld.(*v1alpha1.PipelineRun), e.ObjectNew.(*v1alpha1.PipelineRun)
				if newRun.Status.Phase.IsFinished() && !oldRun.Status.Phase.IsFinished() {
					r.wakeQueued(ctx, newRun, q)
				}
			},
			DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				r.wakeQueued(ctx, e.Object, q)
			},
		}).
		WithOptions(opts).
		Complete(r.tracked())
}

func (r *Reconciler) tracked() reconcile.Reconciler {
	if r.InFlight == nil {
		return r
	}
	return r.InFlight.Wrap(r)
}

func podToRun(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetAnnotations()[v1alpha1.AnnotationRunName]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
}
