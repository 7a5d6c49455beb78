package pipelinerun

import (
	"context"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/render"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

// reconcileClone creates the clone Job once the workspace exists, and waits for it. A
// failed clone ends the run with CloneFailed and the clone's log tail.
func (r *Reconciler) reconcileClone(ctx context.Context, s *scope) error {
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
	runstate.MarkRunning(run, "cloning "+run.Status.ShortCommit)
	if s.cloneJob == nil {
		return nil
	}
	switch runstate.JobOutcome(s.cloneJob) {
	case batchv1.JobFailed:
		msg := "the clone Job failed"
		if t := runstate.Terminated(runstate.LatestPod(s.pods, s.cloneJob)); t != nil && t.Message != "" {
			msg += ": " + t.Message
		}
		return permanent(v1alpha1.ReasonCloneFailed, "%s", runstate.TruncateTail(msg, v1alpha1.MaxMessageBytes))
	case batchv1.JobComplete:
		s.cloneDone = true
	}
	return nil
}

// reconcileSteps starts every step the schedule says may start, then summarizes the
// run, which ends it once its outcome is known.
func (r *Reconciler) reconcileSteps(ctx context.Context, s *scope) error {
	if !s.cloneDone {
		return nil
	}
	for _, i := range runstate.Ready(s.run.Status.Steps) {
		if err := r.startStep(ctx, s, i); err != nil {
			return err
		}
	}
	runstate.Summarize(s.run, metav1.NewTime(s.now))
	return nil
}

// startStep creates the Job of step i, pinned to the node the clone ran on.
func (r *Reconciler) startStep(ctx context.Context, s *scope, i int) error {
	run := s.run
	job, err := render.RenderStepJob(run, &s.def.Pipeline, i, pinnedNode(s), r.Render)
	if err != nil {
		return permanent(v1alpha1.ReasonInvalidDefinition, "steps[%d]: %v", i, err)
	}
	if err := r.ensureChild(ctx, run, job); err != nil {
		return err
	}
	s.stepJobs[i] = job
	run.Status.Steps[i] = runstate.DeriveStep(run.Status.Steps[i], job, s.pods)
	return nil
}

// pinnedNode is the node every step must run on: the node of the clone pod, or, when
// that pod is gone, the node an earlier step Job was pinned to.
func pinnedNode(s *scope) string {
	if s.cloneJob != nil {
		if p := runstate.LatestPod(s.pods, s.cloneJob); p != nil && p.Status.Phase == corev1.PodSucceeded && p.Spec.NodeName != "" {
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
