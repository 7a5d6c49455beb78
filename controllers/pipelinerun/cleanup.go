package pipelinerun

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/render"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

// cleanupFinished cleans up after a finished run: Jobs still active (the run was
// stopped), its workspace (kept for workspace.retainOnFailure after a failure), the run
// itself after its TTL, and older runs of its repository and branch beyond the history
// limits.
func (r *Reconciler) cleanupFinished(ctx context.Context, s *scope) error {
	run := s.run
	// What the pool and the memo hold for a run that ended mid-fetch or mid-flight.
	r.defs.forget(run.UID)
	r.fetches.release(run.UID)
	r.clones.forget(run.UID)
	r.times.forget(run.UID)
	done := s.now
	if run.Status.CompletionTime != nil {
		done = run.Status.CompletionTime.Time
	}
	if err := r.stopActiveJobs(ctx, run); err != nil {
		return err
	}
	if err := r.releaseLostPods(ctx, s); err != nil {
		return err
	}
	if r.Render.StepPriorityClass != "" && render.NeedsOneNode(run) {
		if err := r.releaseHold(ctx, s, nil); err != nil {
			return err
		}
	}
	if err := r.cleanupWorkspace(ctx, s, done); err != nil {
		return err
	}
	ttl := run.Spec.TTLSecondsAfterFinished
	if ttl == nil && r.Lifecycle.DefaultTTLSecondsAfterFinished > 0 {
		ttl = &r.Lifecycle.DefaultTTLSecondsAfterFinished
	}
	if ttl != nil {
		at := done.Add(time.Duration(*ttl) * time.Second)
		if !s.now.Before(at) {
			log.FromContext(ctx).Info("deleting finished run after its TTL", "ttlSecondsAfterFinished", *ttl)
			return client.IgnoreNotFound(r.Client.Delete(ctx, run, client.PropagationPolicy(metav1.DeletePropagationBackground)))
		}
		s.wakeAt(at)
	}
	return r.enforceHistory(ctx, run)
}

func (r *Reconciler) cleanupWorkspace(ctx context.Context, s *scope, done time.Time) error {
	run := s.run
	pvc := &corev1.PersistentVolumeClaim{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: run.Namespace, Name: render.WorkspaceName(run)}, pvc)
	if apierrors.IsNotFound(err) || (err == nil && (!ownedBy(pvc, run) || !pvc.DeletionTimestamp.IsZero() || r.deleting(pvc.UID))) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the workspace: %w", err)
	}
	if keep := run.Spec.Workspace.RetainOnFailure; keep != nil && run.Status.Phase == v1alpha1.PhaseFailed {
		d := keep.Duration
		if most := r.Lifecycle.MaxRetainOnFailure; most > 0 {
			d = min(d, most) // the field may be edited after admission
		}
		if until := done.Add(d); s.now.Before(until) {
			s.wakeAt(until)
			return nil
		}
	}
	// The cache may not show yet that a resume took the workspace over: delete only the
	// version read. A conflict (a takeover, or any other change) is retried: the next
	// pass reads the claim again, and deletes it only if it is still the run's.
	err = r.Client.Delete(ctx, pvc, client.Preconditions{UID: &pvc.UID, ResourceVersion: &pvc.ResourceVersion})
	if apierrors.IsConflict(err) {
		return fmt.Errorf("the workspace changed since it was read; reading it again: %w", err)
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting the workspace: %w", err)
	}
	// Until the cache shows it Terminating, a later pass must not delete it again.
	r.deletedPVCs.Store(pvc.UID, struct{}{})
	return nil
}

func (r *Reconciler) deleting(uid types.UID) bool {
	_, ok := r.deletedPVCs.Load(uid)
	return ok
}

// enforceHistory deletes the oldest finished runs of the run's repository and branch in
// its namespace beyond the operator's history limits. Runs a PipelineTrigger started
// are left to that trigger's own limits, per trigger and branch.
func (r *Reconciler) enforceHistory(ctx context.Context, run *v1alpha1.PipelineRun) error {
	if r.Lifecycle.SuccessfulHistoryLimit < 0 && r.Lifecycle.FailedHistoryLimit < 0 {
		return nil
	}
	group, err := r.groupOf(ctx, run)
	if err != nil {
		return err
	}
	var candidates []*v1alpha1.PipelineRun
	for _, o := range group {
		if o.DeletionTimestamp.IsZero() && !triggered(o) {
			candidates = append(candidates, o)
		}
	}
	limits := runstate.HistoryLimits{Succeeded: r.Lifecycle.SuccessfulHistoryLimit, Failed: r.Lifecycle.FailedHistoryLimit}
	for _, old := range runstate.BeyondHistory(candidates, limits) {
		log.FromContext(ctx).Info("deleting a run beyond the history limit", "deleted", old.Name)
		if err := r.Client.Delete(ctx, old.DeepCopy(), client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting run %s beyond the history limit: %w", old.Name, err)
		}
	}
	return nil
}

// enforceNamespaceHistory deletes the oldest finished runs of the run's namespace
// beyond --namespace-history-limit (runstate.BeyondNamespaceLimit). It runs in the
// pass that ends a run, the only moment the count grows; the runs it reads are the
// namespace's finished runs, through the cache's index, so its cost is bounded by the
// limit, not by every run that exists.
func (r *Reconciler) enforceNamespaceHistory(ctx context.Context, run *v1alpha1.PipelineRun) error {
	limit := r.Lifecycle.namespaceHistoryLimit()
	if limit < 0 {
		return nil
	}
	list := &v1alpha1.PipelineRunList{}
	if err := r.Client.List(ctx, list, client.InNamespace(run.Namespace), client.UnsafeDisableDeepCopy,
		client.MatchingFields{v1alpha1.IndexRunState: v1alpha1.IndexFinished}); err != nil {
		return fmt.Errorf("listing the namespace's finished runs: %w", err)
	}
	if runstate.BeyondNamespaceLimit(len(list.Items), limit) == 0 {
		return nil
	}
	runs := make([]*v1alpha1.PipelineRun, 0, len(list.Items))
	for i := range list.Items {
		if o := &list.Items[i]; o.DeletionTimestamp.IsZero() {
			runs = append(runs, o)
		}
	}
	for _, old := range runstate.Oldest(runs, runstate.BeyondNamespaceLimit(len(runs), limit)) {
		log.FromContext(ctx).Info("deleting a run beyond the namespace's history limit", "deleted", old.Name)
		if err := r.Client.Delete(ctx, old.DeepCopy(), client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting run %s beyond the namespace's history limit: %w", old.Name, err)
		}
	}
	return nil
}

// triggered reports whether a PipelineTrigger controls the run.
func triggered(run *v1alpha1.PipelineRun) bool {
	ref := metav1.GetControllerOf(run)
	return ref != nil && ref.Kind == "PipelineTrigger" && ref.APIVersion == v1alpha1.GroupVersion.String()
}
