package pipelinerun

import (
	"context"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/render"
	"github.com/flow-ci/flow-ci/internal/runstate"
	"github.com/flow-ci/flow-ci/internal/shorten"
)

// reconcileClone creates the clone Job once the workspace exists, and waits for it. It
// marks the run Running; a failed clone ends it (CloneFailed) with the clone's log tail.
func (r *Reconciler) reconcileClone(ctx context.Context, s *scope) (bool, error) {
	run := s.run
	if s.cloneJob == nil {
		if len(s.stepJobs) > 0 {
			s.cloneDone = true // it finished earlier and its Job was removed since
			return false, nil
		}
		job := render.RenderCloneJob(run, r.Render, r.cloneReserve(s))
		if len(s.def.Pipeline.Caches) > 0 && run.Spec.ResumeFrom == nil {
			render.WithCacheRestore(job, &s.def.Pipeline, r.archiveConfig(ctx))
		}
		if err := r.ensureChild(ctx, run, job); err != nil {
			return false, err
		}
	}
	runstate.MarkRunning(run, "cloning "+run.Status.ShortCommit)
	if s.cloneJob == nil {
		return false, nil
	}
	switch runstate.JobOutcome(s.cloneJob) {
	case batchv1.JobFailed:
		msg := "the clone Job failed"
		if t := runstate.Terminated(runstate.LatestPod(s.pods, s.cloneJob)); t != nil && t.Message != "" {
			msg += ": " + t.Message
		}
		return false, permanent(v1alpha1.ReasonCloneFailed, "%s", shorten.Tail(msg, v1alpha1.MaxMessageBytes))
	case batchv1.JobComplete:
		s.cloneDone = true
		runstate.RecordClone(run, s.cloneJob)
	}
	return false, nil
}

// cloneReserve is what the clone pod requests for the steps: with a workspace that
// pins every pod to the clone's node, their peak, so that node has room for the steps
// that run side by side. A step that still does not fit is Unschedulable (watchdog).
func (r *Reconciler) cloneReserve(s *scope) corev1.ResourceList {
	if !render.NeedsOneNode(s.run) {
		return nil
	}
	return render.PeakRequests(&s.def.Pipeline, r.Render, r.Lifecycle.maxParallelSteps(), runstate.Reused(s.run))
}

// reconcileSteps moves the graph: failFast stops, skips, and every step that may start
// now gets its Job in this pass. Then the run is summarized (progress, the running
// steps), which ends it once every step has ended. It is the last phase.
func (r *Reconciler) reconcileSteps(ctx context.Context, s *scope) (bool, error) {
	if !s.cloneDone {
		return false, nil
	}
	var tails map[int]string
	if stops := runstate.FailFastStops(s.run, s.graph); len(stops) > 0 {
		tails = r.logTails(ctx, s, stops)
	}
	for _, i := range runstate.Schedule(s.run, s.graph, tails, metav1.NewTime(s.now)) {
		if err := r.startStep(ctx, s, i); err != nil {
			return false, err
		}
	}
	runstate.Summarize(s.run, s.graph, metav1.NewTime(s.now))
	return true, nil
}

// startStep creates the Job of step i, pinned to the node the clone ran on when the
// workspace needs one node.
func (r *Reconciler) startStep(ctx context.Context, s *scope, i int) error {
	run := s.run
	node := ""
	if render.NeedsOneNode(run) {
		node = pinnedNode(s)
	}
	cfg := r.Render
	if st := s.def.Pipeline.Step(i); st.Artifacts != nil || st.SavesCaches {
		cfg = r.archiveConfig(ctx)
	}
	job, err := render.RenderStepJob(run, &s.def.Pipeline, i, node, cfg)
	if err != nil {
		return permanent(v1alpha1.ReasonInvalidDefinition, "%s: %v", s.def.Pipeline.Path(i), err)
	}
	if err := r.ensureChild(ctx, run, job); err != nil {
		return err
	}
	s.stepJobs[i] = job
	run.Status.Steps[i].Timing = &v1alpha1.StepTiming{ReadyTime: runstate.ReadyTime(&run.Status, i)}
	run.Status.Steps[i] = runstate.DeriveStep(run.Status.Steps[i], job, s.pods)
	return nil
}

// pinnedNode is the node every step must run on: the node of the clone pod (read, or
// seen as it left the cache), or, when that pod is gone, the node an earlier step Job
// was pinned to.
func pinnedNode(s *scope) string {
	if s.cloneJob != nil {
		if p := runstate.LatestPod(s.pods, s.cloneJob); p != nil && p.Status.Phase == corev1.PodSucceeded && p.Spec.NodeName != "" {
			return p.Spec.NodeName
		}
	}
	if s.cloneNode != "" {
		return s.cloneNode
	}
	for _, j := range s.stepJobs {
		if n := render.PinnedNode(j); n != "" {
			return n
		}
	}
	return ""
}

// archiveConfig is r.Render with where the archive is and its certificate, for the pods
// that reach it: the clone that restores caches, the steps that keep artifacts or save
// caches.
func (r *Reconciler) archiveConfig(ctx context.Context) render.Config {
	cfg := r.Render
	cfg.Archive.URL, cfg.Archive.CA = r.Archive.Get(ctx)
	return cfg
}
