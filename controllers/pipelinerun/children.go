package pipelinerun

import (
	"context"
	"fmt"
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/render"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

// ensureChild creates obj, or adopts the existing object of that name only when this
// run (by UID) controls it and it is what the run would have created: anyone who may
// create objects in the namespace can forge the owner reference, so an adopted child is
// compared with the rendered one (sameChild). Anything else is a ChildConflict and is
// left untouched. On success obj holds the server's copy: the created object, or the
// adopted one. A child the API server refuses as invalid or too large ends the run.
func (r *Reconciler) ensureChild(ctx context.Context, run *v1alpha1.PipelineRun, obj client.Object) error {
	err := r.Client.Create(ctx, obj)
	switch {
	case err == nil:
		return nil
	case apierrors.IsInvalid(err), apierrors.IsRequestEntityTooLargeError(err):
		return permanent(v1alpha1.ReasonChildRejected, "the API server refused %s %q: %v", kindOf(obj), obj.GetName(), err)
	case apierrors.IsForbidden(err):
		// A ResourceQuota, LimitRange or admission policy of the namespace: retrying
		// cannot help, and the run says why at once instead of timing out.
		return permanent(v1alpha1.ReasonChildRejected, "the namespace does not admit %s %q: %v", kindOf(obj), obj.GetName(), err)
	case !apierrors.IsAlreadyExists(err):
		return fmt.Errorf("creating %s %s: %w", kindOf(obj), obj.GetName(), err)
	}
	// The cache may not have it yet, or it is not ours: ask the API server. A create
	// that failed left obj as rendered; keep that to compare with.
	rendered := obj.DeepCopyObject().(client.Object)
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		return fmt.Errorf("reading existing %s: %w", obj.GetName(), err)
	}
	if err := notOurs(obj, run); err != nil {
		return err
	}
	if why := sameChild(obj, rendered); why != "" {
		return permanent(v1alpha1.ReasonChildConflict,
			"%s %q is owned by this run but is not the one it would create (%s); it was left untouched", kindOf(obj), obj.GetName(), why)
	}
	return nil
}

// notOurs is nil for a child this run controls. A child of an earlier run with the same
// name (a deleted run whose children the garbage collector has not removed yet) is waited
// for and never adopted; anything else is a ChildConflict and is left untouched.
func notOurs(existing client.Object, run *v1alpha1.PipelineRun) error {
	if ownedBy(existing, run) {
		return nil
	}
	if ref := metav1.GetControllerOf(existing); ref != nil && ref.Kind == "PipelineRun" &&
		ref.APIVersion == v1alpha1.GroupVersion.String() && ref.Name == run.Name {
		return fmt.Errorf("waiting for %s %q of an earlier run named %q (uid %s) to be deleted",
			kindOf(existing), existing.GetName(), run.Name, ref.UID)
	}
	return permanent(v1alpha1.ReasonChildConflict,
		"%s %q exists and is not owned by this run; it was left untouched", kindOf(existing), existing.GetName())
}

// ownedBy says whether run controls o: by UID, and by kind and API version too, since
// the admission policy that keeps tenants from writing a run's definition ConfigMap
// (config/policy/pipelinerun_definitions.yaml) recognises a run's children by those.
func ownedBy(o metav1.Object, run *v1alpha1.PipelineRun) bool {
	ref := metav1.GetControllerOf(o)
	return ref != nil && ref.UID == run.UID && ref.Kind == "PipelineRun" && ref.APIVersion == v1alpha1.GroupVersion.String()
}

func kindOf(o client.Object) string {
	switch o.(type) {
	case *batchv1.Job:
		return "Job"
	case *corev1.PersistentVolumeClaim:
		return "PersistentVolumeClaim"
	case *corev1.ConfigMap:
		return "ConfigMap"
	case *corev1.Pod:
		return "Pod"
	}
	return fmt.Sprintf("%T", o)
}

// reconcileWorkspace makes sure the run's PVC exists until the clone has filled it;
// after that the steps' pods need it, and a pass does not read it again. It sets
// nothing; a workspace of that name that is not the run's ends it (ChildConflict).
func (r *Reconciler) reconcileWorkspace(ctx context.Context, s *scope) (bool, error) {
	if len(s.stepJobs) > 0 || s.cloneJob != nil && runstate.JobOutcome(s.cloneJob) == batchv1.JobComplete {
		return false, nil
	}
	if s.run.Spec.ResumeFrom != nil {
		return false, nil // taken over from the resumed run (reconcileResume), never made
	}
	pvc := render.RenderWorkspace(s.run)
	existing := &corev1.PersistentVolumeClaim{}
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(pvc), existing); err == nil {
		return false, notOurs(existing, s.run)
	} else if !apierrors.IsNotFound(err) {
		return false, fmt.Errorf("reading the workspace: %w", err)
	}
	return false, r.ensureChild(ctx, s.run, pvc)
}

// observeChildren lists the run's Jobs and unfinished pods from the cache, by run UID,
// reads the pods of Jobs that just ended (endedPods), and derives every step from them
// (runstate.DeriveSteps: phases, times, and at its end a step's attempts and exit code).
// Objects that carry the label but are not controlled by this run are ignored. A
// running step whose Job the cache lacks is looked up on the API server: the cache may
// lag, or someone deleted the Job, which fails the step (StepJobDeleted), because a step
// is never re-run silently.
func (r *Reconciler) observeChildren(ctx context.Context, s *scope) (bool, error) {
	sel := client.MatchingFields{v1alpha1.IndexRunUID: string(s.run.UID)}
	jobs := &batchv1.JobList{}
	// The cache's own copies, read only: a pass copies what it changes.
	if err := r.Client.List(ctx, jobs, client.InNamespace(s.run.Namespace), sel, client.UnsafeDisableDeepCopy); err != nil {
		return false, fmt.Errorf("listing jobs: %w", err)
	}
	pods := &corev1.PodList{}
	if err := r.Client.List(ctx, pods, client.InNamespace(s.run.Namespace), sel, client.UnsafeDisableDeepCopy); err != nil {
		return false, fmt.Errorf("listing pods: %w", err)
	}
	s.stepJobs = map[int]*batchv1.Job{}
	for i := range jobs.Items {
		j := &jobs.Items[i]
		switch {
		case !ownedBy(j, s.run):
		case j.Name == render.CloneJobName(s.run):
			s.cloneJob = j
		default:
			if idx, ok := stepIndexOf(s, j); ok {
				s.stepJobs[idx] = j
			}
		}
	}
	s.pods = pods.Items
	s.cloneNode = r.clones.node(s.run.UID, s.cloneJob)
	for _, i := range runstate.Active(s.run.Status.Steps) {
		if s.stepJobs[i] != nil {
			continue
		}
		job, err := r.uncachedStepJob(ctx, s, i)
		if err != nil {
			return false, err
		}
		s.stepJobs[i] = job
	}
	if err := r.endedPods(ctx, s); err != nil {
		return false, err
	}
	runstate.DeriveSteps(s.run, s.stepJobs, s.pods)
	if s.def != nil && len(s.def.Pipeline.Caches) > 0 {
		last := len(s.def.Pipeline.Steps) + len(s.def.Pipeline.Finally) - 1
		var save *batchv1.Job
		if render.SavesCachesStep(&s.def.Pipeline, last) {
			save = s.stepJobs[last]
		}
		runstate.RecordCaches(s.run, s.cloneJob, save, s.pods)
	}
	return false, nil
}

// uncachedStepJob reads the Job of a running step from the API server. A Job that is
// gone fails its step (StepJobDeleted): the graph goes on as after any failure, and the
// step is not re-run.
func (r *Reconciler) uncachedStepJob(ctx context.Context, s *scope, i int) (*batchv1.Job, error) {
	name := render.StepJobName(s.run, i, s.def.Pipeline.Step(i).Name)
	job := &batchv1.Job{}
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: s.run.Namespace, Name: name}, job)
	switch {
	case err == nil && ownedBy(job, s.run):
		return job, nil
	case err == nil, apierrors.IsNotFound(err):
		runstate.FailStep(s.run, i, v1alpha1.ReasonStepJobDeleted, fmt.Sprintf("the Job %q was deleted before it finished", name), metav1.NewTime(s.now))
		return nil, nil
	}
	return nil, fmt.Errorf("reading step job %s: %w", name, err)
}

// stepIndexOf returns the index of the step a Job runs, matching the name the index
// renders to, so a relabelled Job cannot pose as another step.
func stepIndexOf(s *scope, j *batchv1.Job) (int, bool) {
	idx, err := strconv.Atoi(j.Labels[v1alpha1.LabelStepIndex])
	if err != nil || idx < 0 || idx >= len(s.def.Pipeline.Steps)+len(s.def.Pipeline.Finally) || j.Name != render.StepJobName(s.run, idx, s.def.Pipeline.Step(idx).Name) {
		return 0, false
	}
	return idx, true
}
