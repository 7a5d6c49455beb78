package pipelinerun

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers/metrics"
	"github.com/flow-ci/flow-ci/internal/render"
)

// +kubebuilder:rbac:groups=ci.flowci.dev,resources=pipelineruns,verbs=get;list;watch;patch;delete
// +kubebuilder:rbac:groups=ci.flowci.dev,resources=pipelineruns/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=pods/status,verbs=patch
// +kubebuilder:rbac:groups=scheduling.k8s.io,resources=priorityclasses,verbs=list
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=pods/log,verbs=get
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get;list;watch;create;delete;patch
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;create
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups="",resources=services,verbs=get,namespace=flow-ci-system
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// SetupWithManager registers the controller, its indexes and its fetch pool. Children
// are watched through the cache, which only holds objects carrying the run-UID label
// (controllers.CacheOptions), and only the events that can move a run reconcile it
// (watch.go).
func (r *Reconciler) SetupWithManager(mgr manager.Manager, opts controller.Options) error {
	if err := registerIndexes(mgr.GetFieldIndexer()); err != nil {
		return err
	}
	if r.Fetchers <= 0 {
		r.Fetchers = DefaultFetchers
	}
	r.fetches = newFetcher(r.Fetchers)
	if opts.RateLimiter == nil {
		// Transient errors (a Secret not applied yet, a flaky git server) retry with
		// backoff capped at 30s, not the default 16 minutes: runs are short-lived.
		opts.RateLimiter = workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](100*time.Millisecond, 30*time.Second)
	}
	return r.build(mgr, opts)
}

// registerIndexes adds the cache's indexes: runs by concurrency group and by state
// (queue.go), Jobs and pods by their run's UID.
func registerIndexes(indexer client.FieldIndexer) error {
	ctx := context.Background() // the indexers use it only while they are registered
	if err := indexer.IndexField(ctx, &v1alpha1.PipelineRun{}, v1alpha1.IndexRunGroup, func(o client.Object) []string {
		run := o.(*v1alpha1.PipelineRun)
		return []string{render.RunGroupKey(run)}
	}); err != nil {
		return fmt.Errorf("indexing runs by group: %w", err)
	}
	if err := indexer.IndexField(ctx, &v1alpha1.PipelineRun{}, v1alpha1.IndexRunState, func(o client.Object) []string {
		return []string{runState(o.(*v1alpha1.PipelineRun))}
	}); err != nil {
		return fmt.Errorf("indexing runs by state: %w", err)
	}
	byRunUID := func(o client.Object) []string {
		if uid := o.GetLabels()[v1alpha1.LabelRunUID]; uid != "" {
			return []string{uid}
		}
		return nil
	}
	for _, obj := range []client.Object{&batchv1.Job{}, &corev1.Pod{}} {
		if err := indexer.IndexField(ctx, obj, v1alpha1.IndexRunUID, byRunUID); err != nil {
			return fmt.Errorf("indexing %T by run: %w", obj, err)
		}
	}
	return nil
}

// build registers the watches: runs, their children, finished fetches, and the runs
// whose end may free a queued run's place.
func (r *Reconciler) build(mgr manager.Manager, opts controller.Options) error {
	fetched := handler.TypedFuncs[*v1alpha1.PipelineRun, reconcile.Request]{
		GenericFunc: func(_ context.Context, e event.TypedGenericEvent[*v1alpha1.PipelineRun], q queue) {
			enqueue(q, requestFor(e.Object), priorityFetched)
		},
	}
	b := builder.ControllerManagedBy(mgr).
		Named("pipelinerun").
		Watches(&v1alpha1.PipelineRun{}, r.runEvents()).
		Watches(&batchv1.Job{}, jobEvents()).
		Watches(&corev1.Pod{}, r.podEvents()).
		Watches(&corev1.PersistentVolumeClaim{}, handler.Funcs{
			UpdateFunc: func(_ context.Context, e event.UpdateEvent, _ queue) {
				if !e.ObjectNew.GetDeletionTimestamp().IsZero() {
					r.deletedPVCs.Delete(e.ObjectNew.GetUID())
				}
			},
			DeleteFunc: func(_ context.Context, e event.DeleteEvent, q queue) {
				r.deletedPVCs.Delete(e.Object.GetUID())
				toOwner(e.Object, q, priorityOutcome)
			},
		}).
		WatchesRawSource(source.TypedChannel(r.fetches.wake, fetched)).
		// A run that ends or goes away may free the place a Queued run waits for.
		Watches(&v1alpha1.PipelineRun{}, handler.Funcs{
			UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q queue) {
				oldRun, newRun := e.ObjectOld.(*v1alpha1.PipelineRun), e.ObjectNew.(*v1alpha1.PipelineRun)
				if newRun.Status.Phase.IsFinished() && !oldRun.Status.Phase.IsFinished() {
					r.wakeQueued(ctx, newRun, q)
				}
			},
			DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q queue) {
				r.fetches.release(e.Object.GetUID())
				r.defs.forget(e.Object.GetUID())
				r.clones.forget(e.Object.GetUID())
				r.times.forget(e.Object.GetUID())
				if run, ok := e.Object.(*v1alpha1.PipelineRun); ok {
					r.wakeQueued(ctx, run, q)
				}
			},
		}).
		WithOptions(opts)
	if r.ForgetDeletedNamespaces {
		// Only the name of each namespace is kept; its deletion drops its series.
		b = b.WatchesMetadata(&corev1.Namespace{}, handler.Funcs{
			DeleteFunc: func(_ context.Context, e event.DeleteEvent, _ queue) { metrics.ForgetNamespace(e.Object.GetName()) },
		})
	}
	return b.Complete(r.tracked())
}

func (r *Reconciler) tracked() reconcile.Reconciler {
	if r.InFlight == nil {
		return r
	}
	return r.InFlight.Wrap(r)
}
