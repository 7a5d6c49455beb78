package controllers

import (
	"context"
	"fmt"
	"maps"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gitsource"
	"github.com/flow-ci/flow-ci/internal/pipeline"
	"github.com/flow-ci/flow-ci/internal/render"
)

// reconcileStart labels the run with its repository and branch (for kubectl and
// GitOps tools; grouping itself reads the spec) and re-checks the repo URL and branch,
// which the CRD already validated, because the controller must not trust that the CRD
// in the cluster is ours. Unsafe ones end the run with InvalidSpec.
func (r *PipelineRunReconciler) reconcileStart(ctx context.Context, s *scope) error {
	run := s.run
	if err := gitsource.ValidateURL(run.Spec.RepoURL); err != nil {
		return permanent(civ1alpha1.ReasonInvalidSpec, "spec.repoURL: %w", err)
	}
	if run.Spec.Revision == "" {
		if err := gitsource.ValidateBranch(run.Spec.Branch); err != nil {
			return permanent(civ1alpha1.ReasonInvalidSpec, "spec.branch: %w", err)
		}
	}
	want := render.GroupLabels(run.Spec.RepoURL, run.Spec.Branch)
	if run.Labels[render.LabelRepo] == want[render.LabelRepo] && run.Labels[render.LabelBranch] == want[render.LabelBranch] {
		return nil
	}
	patch := client.MergeFrom(run.DeepCopy())
	if run.Labels == nil {
		run.Labels = map[string]string{}
	}
	maps.Copy(run.Labels, want)
	if err := r.Client.Patch(ctx, run, patch); err != nil {
		return fmt.Errorf("labelling the run: %w", err)
	}
	return nil
}

// reconcileDefinition pins the commit and the pipeline file. The first pass resolves the
// branch, reads and validates the file, and stores it in an immutable ConfigMap owned by
// the run; every later pass, and any restarted controller, reads that ConfigMap and
// never resolves the branch again. A bad file ends the run (InvalidDefinition) before
// any child exists.
func (r *PipelineRunReconciler) reconcileDefinition(ctx context.Context, s *scope) error {
	run := s.run
	cm := &corev1.ConfigMap{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: run.Namespace, Name: render.DefinitionName(run)}, cm)
	switch {
	case err == nil:
		if err := notOurs(cm, run); err != nil {
			return err
		}
	case apierrors.IsNotFound(err):
		if cm, err = r.createDefinition(ctx, run); err != nil {
			return err
		}
	default:
		return fmt.Errorf("reading the definition: %w", err)
	}

	commit, raw := cm.Annotations[render.AnnotationCommit], cm.Data[render.DefinitionKey]
	def, err := pipeline.Parse([]byte(raw))
	if err != nil {
		return permanent(civ1alpha1.ReasonInvalidDefinition, "%s: %v", run.Spec.PipelinePath, err)
	}
	if run.Status.DefinitionDigest != "" && run.Status.DefinitionDigest != def.Digest {
		return permanent(civ1alpha1.ReasonInvalidDefinition, "the pinned definition changed: status has %s, ConfigMap %q has %s",
			run.Status.DefinitionDigest, cm.Name, def.Digest)
	}
	pin(&run.Status, commit, def)
	s.def = def
	return nil
}

// createDefinition resolves, reads and validates the pipeline file, then stores it. When
// the ConfigMap already exists (a stale cache, or a restart between create and status
// patch) the stored one wins, so a branch that moved meanwhile cannot change the run.
func (r *PipelineRunReconciler) createDefinition(ctx context.Context, run *civ1alpha1.PipelineRun) (*corev1.ConfigMap, error) {
	auth, err := r.gitAuth(ctx, run)
	if err != nil {
		return nil, err
	}
	commit := run.Status.Commit // pinned before the ConfigMap was lost: never re-resolve
	if commit == "" {
		if commit, err = r.Source.ResolveCommit(ctx, run.Spec.RepoURL, run.Spec.Branch, run.Spec.Revision, auth); err != nil {
			return nil, classifyGitError(err)
		}
	}
	raw, err := r.Source.ReadFile(ctx, run.Spec.RepoURL, commit, run.Spec.PipelinePath, auth)
	if err != nil {
		return nil, classifyGitError(err)
	}
	if _, err := pipeline.Parse(raw); err != nil {
		// Pin the commit so the user sees which file was rejected.
		run.Status.Commit, run.Status.ShortCommit = commit, shortSHA(commit)
		return nil, permanent(civ1alpha1.ReasonInvalidDefinition, "%s at %s: %v", run.Spec.PipelinePath, shortSHA(commit), err)
	}
	cm := render.RenderDefinition(run, commit, raw)
	// An existing ConfigMap of this run replaces ours in cm: the stored definition wins.
	if err := r.ensureChild(ctx, run, cm); err != nil {
		return nil, err
	}
	return cm, nil
}

// reconcileWorkspace makes sure the run's PVC exists.
func (r *PipelineRunReconciler) reconcileWorkspace(ctx context.Context, s *scope) error {
	pvc := render.RenderWorkspace(s.run)
	existing := &corev1.PersistentVolumeClaim{}
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(pvc), existing); err == nil {
		return notOurs(existing, s.run)
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading the workspace: %w", err)
	}
	return r.ensureChild(ctx, s.run, pvc)
}

// observeChildren lists the run's Jobs and pods from the cache, by run UID. Objects
// that carry the label but are not controlled by this run are ignored.
func (r *PipelineRunReconciler) observeChildren(ctx context.Context, s *scope) error {
	sel := client.MatchingLabels{render.LabelRunUID: string(s.run.UID)}
	jobs := &batchv1.JobList{}
	if err := r.Client.List(ctx, jobs, client.InNamespace(s.run.Namespace), sel); err != nil {
		return fmt.Errorf("listing jobs: %w", err)
	}
	pods := &corev1.PodList{}
	if err := r.Client.List(ctx, pods, client.InNamespace(s.run.Namespace), sel); err != nil {
		return fmt.Errorf("listing pods: %w", err)
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
	for i := range s.run.Status.Steps {
		s.run.Status.Steps[i] = deriveStep(s.run.Status.Steps[i], s.stepJobs[i], s.pods)
	}
	return nil
}

// stepIndexOf returns the index of the step a Job runs, matching the name the index
// renders to, so a relabelled Job cannot pose as another step.
func stepIndexOf(s *scope, j *batchv1.Job) (int, bool) {
	var idx int
	if _, err := fmt.Sscanf(j.Labels[render.LabelStepIndex], "%d", &idx); err != nil {
		return 0, false
	}
	if idx < 0 || idx >= len(s.def.Pipeline.Steps) || j.Name != render.StepJobName(s.run, idx, s.def.Pipeline.Steps[idx].Name) {
		return 0, false
	}
	return idx, true
}

// reconcileClone creates the clone Job once the workspace exists, and waits for it. A
// failed clone ends the run with CloneFailed and the clone's log tail.
func (r *PipelineRunReconciler) reconcileClone(ctx context.Context, s *scope) error {
	run := s.run
	if s.cloneJob == nil {
		if len(s.stepJobs) > 0 {
			s.cloneDone = true // it finished earlier and its Job was removed since
			return nil
		}
		if err := r.ensureChild(ctx, run, render.RenderCloneJob(run, r.Render)); err != nil {
			return err
		}
	}
	markRunning(run, "cloning "+run.Status.ShortCommit)
	if s.cloneJob == nil {
		return nil
	}
	switch jobOutcome(s.cloneJob) {
	case batchv1.JobFailed:
		msg := "the clone Job failed"
		if t := terminated(latestPod(s.pods, s.cloneJob.Name)); t != nil && t.Message != "" {
			msg += ": " + t.Message
		}
		return permanent(civ1alpha1.ReasonCloneFailed, "%s", truncate(msg, civ1alpha1.MaxMessageBytes))
	case batchv1.JobComplete:
		s.cloneDone = true
	}
	return nil
}

// reconcileSteps derives every step's state from its Job and pod, then creates the next
// step's Job when the previous one is Complete. Only one step Job is ever active.
func (r *PipelineRunReconciler) reconcileSteps(ctx context.Context, s *scope) error {
	run := s.run
	if !s.cloneDone {
		return nil
	}
	// A Running step without its Job had it deleted, or the cache lags: startStep asks.
	next := nextStep(run.Status.Steps)
	if next >= 0 && (run.Status.Steps[next].Phase == civ1alpha1.StepPending || s.stepJobs[next] == nil && run.Status.Steps[next].Phase == civ1alpha1.StepRunning) {
		if err := r.startStep(ctx, s, next); err != nil {
			return err
		}
	}
	summarize(&run.Status, metav1.NewTime(s.now))
	return nil
}

// startStep creates the Job for step i, pinned to the node the clone ran on. A step
// whose Job was created before but is gone is never recreated silently.
func (r *PipelineRunReconciler) startStep(ctx context.Context, s *scope, i int) error {
	run, st := s.run, &s.run.Status.Steps[i]
	job, err := render.RenderStepJob(run, &s.def.Pipeline, i, pinnedNode(s), r.Render)
	if err != nil {
		return permanent(civ1alpha1.ReasonInvalidDefinition, "steps[%d]: %v", i, err)
	}
	if st.JobName != "" {
		// Status says the Job was created; the cache may lag, so ask the API server.
		existing := &batchv1.Job{}
		err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(job), existing)
		if err == nil && ownedBy(existing, run) {
			*st = deriveStep(*st, existing, s.pods)
			return nil
		}
		if !apierrors.IsNotFound(err) && err != nil {
			return fmt.Errorf("reading step job: %w", err)
		}
		return permanent(civ1alpha1.ReasonStepJobDeleted, "the Job %q of step %q was deleted before it finished", job.Name, st.Name)
	}
	if err := r.ensureChild(ctx, run, job); err != nil {
		return err
	}
	*st = deriveStep(*st, job, nil)
	return nil
}

// pinnedNode is the node every step must run on: the node of the clone pod, or, when
// that pod is gone, the node an earlier step Job was pinned to.
func pinnedNode(s *scope) string {
	for _, p := range s.pods {
		if p.Labels[render.LabelComponent] == render.ComponentClone && p.Status.Phase == corev1.PodSucceeded && p.Spec.NodeName != "" {
			return p.Spec.NodeName
		}
	}
	for _, j := range s.stepJobs {
		if n := render.PinnedNode(j); n != "" {
			return n
		}
	}
	return ""
}

func markRunning(run *civ1alpha1.PipelineRun, msg string) {
	if run.Status.Phase == civ1alpha1.PhaseRunning {
		return
	}
	run.Status.Phase = civ1alpha1.PhaseRunning
	apimeta.SetStatusCondition(&run.Status.Conditions, metav1.Condition{
		Type: civ1alpha1.ConditionSucceeded, Status: metav1.ConditionUnknown,
		Reason: civ1alpha1.ReasonRunning, Message: msg, ObservedGeneration: run.Generation,
	})
}
