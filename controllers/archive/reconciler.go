// Package archive is the run archive's controller: it streams every run's clone and
// step logs into the store as they are written, stores each run's record when it ends,
// and holds a deleted run (a finalizer) until both are stored, for at most --hold. It
// runs in its own Deployment, apart from the operator.
package archive

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers"
	"github.com/flow-ci/flow-ci/internal/archive"
	"github.com/flow-ci/flow-ci/internal/podlogs"
)

// Reconciler archives PipelineRuns.
type Reconciler struct {
	Client    client.Client
	APIReader client.Reader
	// Pods reads logs (follow streams) and pods fresh from the API server.
	Pods   corev1client.PodsGetter
	Store  archive.Store
	Limits Limits
	// CacheBytes bounds one namespace's caches (--max-namespace-cache-bytes): past it,
	// the least recently used entries are evicted when a run's saved entries commit.
	CacheBytes int64
	Hold       time.Duration
	Standby    StandbyOptions
	Log        logr.Logger
	Metrics    *Metrics

	now     func() time.Time
	streams *streams
	standby *standby // nil without one
	usage   usage
	// kick reconciles a run again when one of its streams stops.
	kick chan event.TypedGenericEvent[*v1alpha1.PipelineRun]

	mu       sync.Mutex
	recorded map[string]bool                 // run UIDs whose record is stored
	caughtUp map[string]bool                 // run UIDs whose pods were listed from the API server once at their end
	uids     map[types.NamespacedName]string // to forget a deleted run
	names    map[string]types.NamespacedName // to look at a run again when a stream ends
}

func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if r.streams.stopping() {
		// The streams ended because the archive stops, not because the logs did: the
		// next leader resumes them and archives the run.
		return ctrl.Result{}, nil
	}
	run := &v1alpha1.PipelineRun{}
	if err := r.Client.Get(ctx, req.NamespacedName, run); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	r.remember(req.NamespacedName, string(run.UID))
	finished, deleting := run.Status.Phase.IsFinished(), !run.DeletionTimestamp.IsZero()
	if finished || deleting {
		done, err := r.isRecorded(ctx, run)
		if err != nil {
			return ctrl.Result{}, err
		}
		if done {
			return ctrl.Result{}, r.release(ctx, run, "archived")
		}
	}
	if !deleting && !controllerutil.ContainsFinalizer(run, v1alpha1.FinalizerArchive) {
		if err := r.hold(ctx, run); err != nil {
			return ctrl.Result{}, err
		}
	}
	pods, err := r.runPods(ctx, run, finished || deleting)
	if err != nil {
		return ctrl.Result{}, err
	}
	live := r.startStreams(run, pods)
	if !finished && !deleting {
		return ctrl.Result{}, nil // each stream's end, and the run's, reconcile it again
	}
	reason := "archived"
	if r.streams.busy(string(run.UID)) > 0 || (!finished && live) {
		if !deleting {
			return ctrl.Result{}, nil
		}
		if left := run.DeletionTimestamp.Add(r.Hold).Sub(r.now()); left > 0 {
			return ctrl.Result{RequeueAfter: left}, nil
		}
		r.giveUp(ctx, run)
		reason = "hold-expired"
	}
	return ctrl.Result{}, r.archive(ctx, run, reason)
}

// runPods is the run's pods: from the cache, and once at the run's end (or deletion)
// from the API server, so that a pod the cache has not seen yet is not missed.
func (r *Reconciler) runPods(ctx context.Context, run *v1alpha1.PipelineRun, ending bool) ([]corev1.Pod, error) {
	var list corev1.PodList
	uid := string(run.UID)
	reader := client.Reader(r.Client)
	opts := []client.ListOption{client.InNamespace(run.Namespace), client.MatchingFields{v1alpha1.IndexRunUID: uid}}
	r.mu.Lock()
	catchUp := ending && !r.caughtUp[uid]
	r.mu.Unlock()
	if catchUp {
		reader = r.APIReader
		opts = []client.ListOption{client.InNamespace(run.Namespace), client.MatchingLabels{v1alpha1.LabelRunUID: uid}}
	}
	if err := reader.List(ctx, &list, opts...); err != nil {
		return nil, fmt.Errorf("listing the pods of %s: %w", run.Name, err)
	}
	if catchUp {
		r.mu.Lock()
		r.caughtUp[uid] = true
		r.mu.Unlock()
	}
	return list.Items, nil
}

// startStreams streams the log of every container of the run's pods that has started,
// and reports whether any of its pods may still run.
func (r *Reconciler) startStreams(run *v1alpha1.PipelineRun, pods []corev1.Pod) (live bool) {
	for i := range pods {
		pod := &pods[i]
		srcs := r.sourcesOf(run, pod)
		if len(srcs) > 0 && pod.DeletionTimestamp.IsZero() && pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
			live = true
		}
		for _, src := range srcs {
			if podlogs.ContainerStarted(pod, src.container) {
				r.streams.ensure(src)
			}
		}
	}
	return live
}

// sourcesOf names a pod's logs (its step's or clone's, and its services'), if the pod
// is really the run's: controlled by a Job that the run controls, by UID. Anyone who
// may create pods in the namespace can copy the labels, and a copy must not add a log
// to the run's record.
func (r *Reconciler) sourcesOf(run *v1alpha1.PipelineRun, pod *corev1.Pod) []logSource {
	if pod.Labels[v1alpha1.LabelRunUID] != string(run.UID) {
		return nil
	}
	job := controllers.ControllingJob(context.Background(), pod, r.Client, r.APIReader)
	if job == nil {
		return nil
	}
	if jr := metav1.GetControllerOf(job); jr == nil || jr.Kind != "PipelineRun" || jr.UID != run.UID {
		return nil
	}
	var out []logSource
	for _, s := range streamsOf(pod) {
		out = append(out, logSource{key: archive.StreamKey{UID: string(run.UID), Namespace: run.Namespace, Stream: s.stream},
			pod: pod.Name, container: s.container})
	}
	return out
}

// isRecorded says whether the run's record is stored (asking the store once per run).
func (r *Reconciler) isRecorded(ctx context.Context, run *v1alpha1.PipelineRun) (bool, error) {
	uid := string(run.UID)
	r.mu.Lock()
	done := r.recorded[uid]
	r.mu.Unlock()
	if done {
		return true, nil
	}
	_, err := r.Store.RecordByUID(ctx, uid)
	switch {
	case err == nil:
		r.markRecorded(uid)
		return true, nil
	case isNotFound(err):
		return false, nil
	}
	r.Metrics.error("record")
	return false, fmt.Errorf("looking up the record of %s: %w", run.Name, err)
}

func (r *Reconciler) markRecorded(uid string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recorded[uid] = true
	delete(r.caughtUp, uid)
}

func (r *Reconciler) remember(key types.NamespacedName, uid string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.uids[key]; ok && old != uid {
		r.forgetLocked(key)
	}
	r.uids[key] = uid
	r.names[uid] = key
}

// forget drops what is known of a run that is gone, and stops its streams.
func (r *Reconciler) forget(key types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forgetLocked(key)
}

func (r *Reconciler) forgetLocked(key types.NamespacedName) {
	uid, ok := r.uids[key]
	if !ok {
		return
	}
	delete(r.uids, key)
	delete(r.names, uid)
	delete(r.recorded, uid)
	delete(r.caughtUp, uid)
	r.streams.forget(uid)
}
