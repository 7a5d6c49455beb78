package pipelinerun

import (
	"context"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/render"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

// reconcileResume prepares a run that resumes another (spec.resumeFrom), once its
// definition is pinned and before it has a workspace: it checks the resumed run
// (runstate.ResumeRefusal) and that none of its pods may still write, takes over its
// workspace, marks the steps it reuses (runstate.ResumePlan), and ends the pass, so
// that its status records both before any Job mounts the workspace. A pass whose status
// write failed is done again: the workspace is already the run's. A run cancelled
// before it took the workspace leaves it where it is.
func (r *Reconciler) reconcileResume(ctx context.Context, s *scope) (bool, error) {
	run := s.run
	from := run.Spec.ResumeFrom
	if from == nil || run.Status.Workspace != "" || run.Spec.Cancel || run.Spec.Abort {
		return false, nil
	}
	old := &v1alpha1.PipelineRun{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: run.Namespace, Name: from.Run}, old); err != nil {
		if apierrors.IsNotFound(err) {
			return false, permanent(v1alpha1.ReasonResumeRefused, "run %q does not exist in namespace %s", from.Run, run.Namespace)
		}
		return false, fmt.Errorf("reading the resumed run: %w", err)
	}
	if why := runstate.ResumeRefusal(old, run); why != "" {
		return false, permanent(v1alpha1.ReasonResumeRefused, "%s", why)
	}
	reuse, err := runstate.ResumePlan(old.Status.Steps, run.Status.Steps, s.graph, from.From)
	if err != nil {
		return false, permanent(v1alpha1.ReasonResumeRefused, "%v", err)
	}
	if err := r.stillRunning(ctx, old); err != nil {
		return false, err
	}
	name := render.WorkspaceName(old)
	if err := r.takeWorkspace(ctx, old, run, name); err != nil {
		return false, err
	}
	run.Status.Workspace = name
	runstate.MarkReused(run, reuse, old.Name)
	s.wakeAt(s.now) // our own status write wakes no pass (watch.go): the clone comes in the next
	return true, nil
}

// stillRunning is an error, retried, while a Job or pod of the resumed run has not
// ended: a run's phase is final before its stopped pods are gone (stopActiveJobs), and
// two runs must not write one workspace at once. The run's spec.timeout bounds the
// wait.
func (r *Reconciler) stillRunning(ctx context.Context, old *v1alpha1.PipelineRun) error {
	sel := client.MatchingFields{v1alpha1.IndexRunUID: string(old.UID)}
	jobs := &batchv1.JobList{}
	if err := r.Client.List(ctx, jobs, client.InNamespace(old.Namespace), sel, client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("listing the resumed run's Jobs: %w", err)
	}
	for i := range jobs.Items {
		if j := &jobs.Items[i]; ownedBy(j, old) && (runstate.JobOutcome(j) == "" || j.Status.Active > 0) {
			return fmt.Errorf("waiting for Job %s of the resumed run %s to end", j.Name, old.Name)
		}
	}
	pods := &corev1.PodList{}
	if err := r.Client.List(ctx, pods, client.InNamespace(old.Namespace), sel, client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("listing the resumed run's pods: %w", err)
	}
	for i := range pods.Items {
		if p := &pods.Items[i]; p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			return fmt.Errorf("waiting for pod %s of the resumed run %s to end", p.Name, old.Name)
		}
	}
	return nil
}

// takeWorkspace makes the resumed run's workspace the run's: its controller, and the
// run-UID label that lists it among the run's children. Only a claim the resumed run
// controls (by UID) is taken, with an optimistic lock, so one run holds a workspace at
// a time and the resumed run's cleanup, which deletes only a claim it controls, leaves
// it alone. A claim the run already holds is left as it is.
func (r *Reconciler) takeWorkspace(ctx context.Context, old, run *v1alpha1.PipelineRun, name string) error {
	pvc := &corev1.PersistentVolumeClaim{}
	switch err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: run.Namespace, Name: name}, pvc); {
	case apierrors.IsNotFound(err):
		pvc = nil
	case err != nil:
		return fmt.Errorf("reading the resumed run's workspace: %w", err)
	}
	if why := runstate.WorkspaceRefusal(old, pvc, run.UID); why != "" {
		return permanent(v1alpha1.ReasonResumeRefused, "%s", why)
	}
	if owner := metav1.GetControllerOf(pvc); owner.UID == run.UID {
		return nil
	}
	patch := client.MergeFromWithOptions(pvc.DeepCopy(), client.MergeFromWithOptimisticLock{})
	pvc.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(run, v1alpha1.GroupVersion.WithKind("PipelineRun"))}
	for k, v := range render.Labels(run, v1alpha1.ComponentWorkspace) {
		if pvc.Labels == nil {
			pvc.Labels = map[string]string{}
		}
		pvc.Labels[k] = v
	}
	if err := r.Client.Patch(ctx, pvc, patch); err != nil {
		return fmt.Errorf("taking over the workspace of run %s: %w", old.Name, err)
	}
	return nil
}
