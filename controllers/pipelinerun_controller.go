// Package controllers holds the PipelineRun reconciler: it turns a run into a definition
// ConfigMap, a workspace PVC, a clone Job and one Job per step, and derives the run's
// status from those children on every pass.
package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/pipeline"
	"github.com/flow-ci/flow-ci/internal/render"
)

// PipelineRunReconciler reconciles PipelineRuns.
type PipelineRunReconciler struct {
	// Client reads children from the cache and writes through the API server.
	Client client.Client
	// APIReader reads what the cache does not hold: Secrets (get only) and children
	// that exist but are not ours.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Source    Source
	Render    render.Config
	// Logs reads the bounded log tail of a step that is stopped before it ends.
	Logs      LogReader
	Lifecycle Lifecycle
	// Now is the clock, injectable for tests.
	Now func() time.Time
}

// +kubebuilder:rbac:groups=ci.flowci.dev,resources=pipelineruns,verbs=get;list;watch;patch;delete
// +kubebuilder:rbac:groups=ci.flowci.dev,resources=pipelineruns/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=pods/log,verbs=get
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;create
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// SetupWithManager registers the controller. Children are watched through the cache,
// which only holds objects carrying the run-UID label (see ChildCacheOptions).
func (r *PipelineRunReconciler) SetupWithManager(mgr manager.Manager, opts controller.Options) error {
	if r.Now == nil {
		r.Now = time.Now
	}
	if opts.RateLimiter == nil {
		// Transient errors (a Secret not applied yet, a flaky git server) retry with
		// backoff capped at 30s, not the default 16 minutes: runs are short-lived.
		opts.RateLimiter = workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](100*time.Millisecond, 30*time.Second)
	}
	return builder.ControllerManagedBy(mgr).
		For(&civ1alpha1.PipelineRun{}).
		Owns(&batchv1.Job{}).
		Owns(&corev1.PersistentVolumeClaim{}).
		Owns(&corev1.ConfigMap{}).
		// A step's pod carries the exit code and log tail; its Job owns it, so map it by
		// the run-name annotation render puts on every pod.
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(podToRun)).
		// A run that ends or goes away may free the place a Queued run waits for.
		Watches(&civ1alpha1.PipelineRun{}, handler.Funcs{
			UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				oldRun, newRun := e.ObjectOld.(*civ1alpha1.PipelineRun), e.ObjectNew.(*civ1alpha1.PipelineRun)
				if newRun.Status.Phase.IsFinished() && !oldRun.Status.Phase.IsFinished() {
					r.wakeQueued(ctx, newRun, q)
				}
			},
			DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				r.wakeQueued(ctx, e.Object, q)
			},
		}).
		WithOptions(opts).
		Complete(r)
}

func podToRun(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetAnnotations()[render.AnnotationRunName]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
}

// scope is what the phases of one reconcile share.
type scope struct {
	run *civ1alpha1.PipelineRun
	def *pipeline.Definition
	// children observed this pass
	cloneJob  *batchv1.Job
	cloneDone bool // steps may start
	stepJobs  map[int]*batchv1.Job
	pods      []corev1.Pod

	now  time.Time
	wait bool      // stop the phases here: the run is queued
	next time.Time // the next deadline to look at the run again, if any
}

// wakeAt asks for another reconcile at t: deadlines use RequeueAfter, never polling.
func (s *scope) wakeAt(t time.Time) {
	if !t.IsZero() && (s.next.IsZero() || t.Before(s.next)) {
		s.next = t
	}
}

func (s *scope) result() reconcile.Result {
	if s.next.IsZero() {
		return reconcile.Result{}
	}
	return reconcile.Result{RequeueAfter: max(s.next.Sub(s.now), time.Second)}
}

// Reconcile runs the phases in order and writes status once, in a deferred patch.
func (r *PipelineRunReconciler) Reconcile(ctx context.Context, req reconcile.Request) (res reconcile.Result, retErr error) {
	run := &civ1alpha1.PipelineRun{}
	if err := r.Client.Get(ctx, req.NamespacedName, run); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	// Owner references let the garbage collector remove the children.
	if !run.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, nil
	}
	s := &scope{run: run, now: r.Now()}
	if run.Status.Phase.IsFinished() {
		err := r.reconcileFinished(ctx, s)
		return s.result(), err
	}
	before := run.DeepCopy()
	defer func() {
		retErr = r.finish(ctx, before, run, retErr)
		if retErr == nil {
			res = s.result()
		}
	}()

	for _, phase := range []func(context.Context, *scope) error{
		r.reconcileStart,
		r.reconcileAdmission,
		r.reconcileDefinition,
		r.reconcileWorkspace,
		r.observeChildren,
		r.reconcileStop,
		r.reconcileClone,
		r.reconcileSteps,
	} {
		if err := phase(ctx, s); err != nil {
			return reconcile.Result{}, err
		}
		if run.Status.Phase.IsFinished() || s.wait {
			break
		}
	}
	return reconcile.Result{}, nil
}

// finish turns a permanent error into a failed run, records a transient one on the
// Reconciling condition, emits events for transitions and patches status once.
func (r *PipelineRunReconciler) finish(ctx context.Context, before, run *civ1alpha1.PipelineRun, err error) error {
	var re *runError
	switch {
	case errors.As(err, &re):
		r.failRun(run, re.reason, re.Error())
		apimeta.RemoveStatusCondition(&run.Status.Conditions, civ1alpha1.ConditionReconciling)
		err = nil
	case err != nil:
		apimeta.SetStatusCondition(&run.Status.Conditions, metav1.Condition{
			Type: civ1alpha1.ConditionReconciling, Status: metav1.ConditionTrue,
			Reason: civ1alpha1.ReasonTransientError, Message: truncate(err.Error(), civ1alpha1.MaxMessageBytes),
			ObservedGeneration: run.Generation,
		})
	default:
		apimeta.RemoveStatusCondition(&run.Status.Conditions, civ1alpha1.ConditionReconciling)
	}
	if err == nil {
		run.Status.ObservedGeneration = run.Generation
	}
	r.emitEvents(before, run)
	if equality.Semantic.DeepEqual(before.Status, run.Status) {
		return err
	}
	// Optimistic locking: a status computed from a stale copy of the run is retried, never written.
	perr := r.Client.Status().Patch(ctx, run, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
	if apierrors.IsConflict(perr) {
		// The cache held an older run. The newer version's watch event reconciles again
		// at once; an error here would wait out the rate limiter's backoff instead.
		log.FromContext(ctx).V(1).Info("status was computed from a stale run; the next event recomputes it")
		return err
	}
	if perr != nil {
		return errors.Join(err, fmt.Errorf("patching status: %w", perr))
	}
	return err
}

// failRun ends the run as Failed with reason; steps that never finished are Skipped.
func (r *PipelineRunReconciler) failRun(run *civ1alpha1.PipelineRun, reason, msg string) {
	now := metav1.NewTime(r.Now())
	skipRemaining(run.Status.Steps, "skipped: the run failed ("+reason+")", now)
	setFinished(&run.Status, civ1alpha1.PhaseFailed, reason, msg, now)
	log.Log.V(1).Info("run failed", "run", client.ObjectKeyFromObject(run), "reason", reason)
}

// ensureChild creates obj, or adopts the existing object of that name only when this
// run (by UID) controls it. Anything else is a ChildConflict and is left untouched.
// On success obj holds the server's copy: the created object, or the adopted one.
func (r *PipelineRunReconciler) ensureChild(ctx context.Context, run *civ1alpha1.PipelineRun, obj client.Object) error {
	err := r.Client.Create(ctx, obj)
	if err == nil || !apierrors.IsAlreadyExists(err) {
		if err != nil {
			return fmt.Errorf("creating %T %s: %w", obj, obj.GetName(), err)
		}
		return nil
	}
	// The cache may not have it yet, or it is not ours: ask the API server.
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		return fmt.Errorf("reading existing %s: %w", obj.GetName(), err)
	}
	return notOurs(obj, run)
}

// notOurs is nil for a child this run controls. A child of an earlier run with the same
// name (a deleted run whose children the garbage collector has not removed yet) is waited
// for and never adopted; anything else is a ChildConflict and is left untouched.
func notOurs(existing client.Object, run *civ1alpha1.PipelineRun) error {
	if ownedBy(existing, run) {
		return nil
	}
	if ref := metav1.GetControllerOf(existing); ref != nil && ref.Kind == "PipelineRun" &&
		ref.APIVersion == civ1alpha1.GroupVersion.String() && ref.Name == run.Name {
		return fmt.Errorf("waiting for %s %q of an earlier run named %q (uid %s) to be deleted",
			kindOf(existing), existing.GetName(), run.Name, ref.UID)
	}
	return permanent(civ1alpha1.ReasonChildConflict,
		"%s %q exists and is not owned by this run; it was left untouched", kindOf(existing), existing.GetName())
}

func ownedBy(o metav1.Object, run *civ1alpha1.PipelineRun) bool {
	ref := metav1.GetControllerOf(o)
	return ref != nil && ref.UID == run.UID
}

func kindOf(o client.Object) string {
	switch o.(type) {
	case *batchv1.Job:
		return "Job"
	case *corev1.PersistentVolumeClaim:
		return "PersistentVolumeClaim"
	case *corev1.ConfigMap:
		return "ConfigMap"
	}
	return fmt.Sprintf("%T", o)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Keep the end: for logs, the last lines say what went wrong.
	cut := len(s) - n + len("…")
	for cut < len(s) && (s[cut]&0xC0) == 0x80 { // do not split a UTF-8 sequence
		cut++
	}
	return "…" + s[cut:]
}

// CacheOptions limits the manager's cache of Jobs, pods, PVCs and ConfigMaps to objects
// that carry the run-UID label, and strips managedFields from everything it caches, so
// the operator's memory does not grow with the rest of the cluster.
func CacheOptions() cache.Options {
	sel := labels.NewSelector()
	req, err := labels.NewRequirement(render.LabelRunUID, selection.Exists, nil)
	if err != nil {
		panic(err) // a constant, valid requirement
	}
	by := cache.ByObject{Label: sel.Add(*req)}
	return cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&batchv1.Job{}: by, &corev1.Pod{}: by, &corev1.PersistentVolumeClaim{}: by, &corev1.ConfigMap{}: by,
		},
	}
}
