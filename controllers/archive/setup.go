package archive

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/archive"
)

// The archive's permissions are config/archive/rbac.yaml, written by hand: markers here
// would add them to the operator's generated role.

// SetupWithManager registers the controller. ctx is the archive's lifetime: streams
// end with it.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr manager.Manager, opts controller.Options) error {
	if r.now == nil {
		r.now = time.Now
	}
	if r.Metrics == nil {
		r.Metrics = NewMetrics()
	}
	r.recorded, r.caughtUp = map[string]bool{}, map[string]bool{}
	r.uids, r.names = map[types.NamespacedName]string{}, map[string]types.NamespacedName{}
	r.kick = make(chan event.TypedGenericEvent[*v1alpha1.PipelineRun], 1024)
	r.streams = newStreams(ctx, r.Log, r.newStreamer, r.streamEnded)
	if err := mgr.GetFieldIndexer().IndexField(ctx, &corev1.Pod{}, v1alpha1.IndexRunUID, func(o client.Object) []string {
		if uid := o.GetLabels()[v1alpha1.LabelRunUID]; uid != "" {
			return []string{uid}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("indexing pods by run: %w", err)
	}
	if err := mgr.Add(manager.RunnableFunc(r.loadUsage)); err != nil {
		return err
	}
	// The manager releases the leader's lease only after its runnables returned: this
	// one holds it until the streams stored what they had read, so that a pod that is
	// stopped loses nothing it had read, and no successor writes beside it.
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		<-ctx.Done()
		r.streams.stopAll()
		r.streams.wait(shutdownSave)
		return nil
	})); err != nil {
		return err
	}
	if err := r.setupStandby(mgr); err != nil {
		return err
	}
	return builder.ControllerManagedBy(mgr).
		Named("archive").
		WithOptions(opts).
		For(&v1alpha1.PipelineRun{}).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(podRun)).
		WatchesRawSource(source.Channel(r.kick, &handler.TypedEnqueueRequestForObject[*v1alpha1.PipelineRun]{})).
		Complete(r)
}

// podRun maps a run's pod to its run, by the run-name annotation the operator writes.
// A forged pod only makes the archive look at a run of its own namespace, which then
// ignores it (sourceOf).
func podRun(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetAnnotations()[v1alpha1.AnnotationRunName]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
}

func (r *Reconciler) newStreamer(src logSource) *streamer {
	s := &streamer{store: r.Store, pods: r.Pods, limits: r.Limits, usage: &r.usage, m: r.Metrics, log: r.Log, src: src}
	if r.standby != nil {
		s.adopt = r.standby.adopt
	}
	return s
}

// setupStandby runs, on every replica, the shadows of what the leader streams, until
// this replica leads (Reconciler.Standby).
func (r *Reconciler) setupStandby(mgr manager.Manager) error {
	if r.Standby.Window <= 0 {
		return nil
	}
	r.standby = newStandby(r.Standby, r.Pods, r.Log.WithName("standby"), r.now, 2*r.Limits.MaxLog+64<<20)
	if err := mgr.Add(everyReplica(r.standby.run)); err != nil {
		return err
	}
	// A runnable that needs the lease starts when this replica leads.
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		r.standby.lead()
		<-ctx.Done()
		return nil
	})); err != nil {
		return err
	}
	return builder.ControllerManagedBy(mgr).
		Named("archive-standby").
		WithOptions(controller.Options{MaxConcurrentReconciles: 2, NeedLeaderElection: ptr.To(false)}).
		For(&v1alpha1.PipelineRun{}).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(podRun)).
		Complete(standbyReconciler{r})
}

// everyReplica is a runnable that runs whether or not the replica leads.
type everyReplica func(context.Context) error

func (f everyReplica) Start(ctx context.Context) error { return f(ctx) }
func (everyReplica) NeedLeaderElection() bool          { return false }

// streamEnded looks at a run again when one of its streams stops: it may be archived.
func (r *Reconciler) streamEnded(k archive.StreamKey) {
	r.mu.Lock()
	name, ok := r.names[k.UID]
	r.mu.Unlock()
	if !ok {
		return
	}
	run := &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: name.Namespace, Name: name.Name}}
	select {
	case r.kick <- event.TypedGenericEvent[*v1alpha1.PipelineRun]{Object: run}:
	default: // full: the run's next event or a resync reconciles it
	}
}

// loadUsage reads what each namespace holds once the archive starts, for the
// namespace cap; streams add to it as they store.
func (r *Reconciler) loadUsage(ctx context.Context) error {
	all, err := r.Store.Usage(ctx)
	if err != nil {
		return fmt.Errorf("reading the archive's usage: %w", err)
	}
	r.usage.set(all)
	<-ctx.Done()
	return nil
}
