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
	"github.com/flow-ci/flow-ci/internal/runstate"
)

// reconcileStop ends an active run that was cancelled, ran past spec.timeout, or whose
// active pods tripped a watchdog. Otherwise it schedules a wake-up at the next deadline.
func (r *Reconciler) reconcileStop(ctx context.Context, s *scope) error {
	if err := r.checkDeadline(ctx, s); err != nil || s.run.Status.Phase.IsFinished() {
		return err
	}
	for _, job := range activeJobs(s) {
		pod := runstate.LatestPod(s.pods, job)
		if pod == nil && r.Lifecycle.Unschedulable > 0 {
			// No pod yet, and pod creations do not reconcile: look again when a pod
			// created with the Job would have to be scheduled.
			s.wakeAt(job.CreationTimestamp.Add(r.Lifecycle.Unschedulable))
		}
		v := r.Lifecycle.CheckPod(pod, s.now)
		if v.Reason != "" {
			r.stopRun(ctx, s, v1alpha1.PhaseFailed, v.Reason, v.Message)
			return nil
		}
		s.wakeAt(v.Next)
	}
	return nil
}

// checkDeadline ends a run that was cancelled or ran past spec.timeout, and otherwise
// asks to be woken at the deadline.
func (r *Reconciler) checkDeadline(ctx context.Context, s *scope) error {
	run := s.run
	if run.Spec.Cancel {
		msg := "cancelled through spec.cancel"
		if by := run.Annotations[v1alpha1.AnnotationReplacedBy]; by != "" {
			msg = fmt.Sprintf("replaced by the newer run %q", by)
		}
		r.stopRun(ctx, s, v1alpha1.PhaseCancelled, v1alpha1.ReasonCancelled, msg)
		return nil
	}
	timeout := run.Spec.TimeoutOrDefault()
	deadline := run.Status.StartTime.Add(timeout)
	if !s.now.Before(deadline) {
		r.stopRun(ctx, s, v1alpha1.PhaseFailed, v1alpha1.ReasonTimedOut, fmt.Sprintf("the run exceeded its timeout of %s", timeout))
		return nil
	}
	s.wakeAt(deadline)
	return nil
}

// activeJobs are the Jobs that run now: the clone's, or the running steps'.
func activeJobs(s *scope) []*batchv1.Job {
	var out []*batchv1.Job
	if s.cloneJob != nil && runstate.JobOutcome(s.cloneJob) == "" {
		out = append(out, s.cloneJob)
	}
	for _, i := range runstate.Active(s.run.Status.Steps) {
		if j := s.stepJobs[i]; j != nil {
			out = append(out, j)
		}
	}
	return out
}

// stopRun ends the run, keeping each running step's log tail in its status. The Jobs
// are deleted on the next pass (stopActiveJobs), once the outcome is written: deleting
// them first could, if the status patch then failed, read as Jobs someone else deleted.
func (r *Reconciler) stopRun(ctx context.Context, s *scope, phase v1alpha1.PipelineRunPhase, reason, msg string) {
	tails := map[int]string{}
	for _, i := range runstate.Active(s.run.Status.Steps) {
		if job := s.stepJobs[i]; job != nil {
			tails[i] = r.logTail(ctx, runstate.LatestPod(s.pods, job))
		}
	}
	runstate.End(s.run, runstate.Ending{Phase: phase, Reason: reason, Message: msg, Tails: tails}, metav1.NewTime(s.now))
}

// logTail is the end of a stopped step's log: its termination message when it ended,
// else a bounded pods/log read. Best effort: the log may be gone, and the run ends
// either way.
func (r *Reconciler) logTail(ctx context.Context, pod *corev1.Pod) string {
	if t := runstate.Terminated(pod); t != nil && t.Message != "" {
		return t.Message
	}
	if pod == nil || r.Logs == nil || pod.Status.Phase != corev1.PodRunning {
		return ""
	}
	tail, _ := r.Logs.TailLog(ctx, pod.Namespace, pod.Name, pod.Spec.Containers[0].Name)
	return tail
}

// stopActiveJobs deletes a finished run's Jobs that are still active (stopped steps).
// Deleting sends SIGTERM, then the pod's grace period applies; finished Jobs stay for
// `kubectl logs`.
func (r *Reconciler) stopActiveJobs(ctx context.Context, run *v1alpha1.PipelineRun) error {
	jobs := &batchv1.JobList{}
	if err := r.Client.List(ctx, jobs, client.InNamespace(run.Namespace), client.MatchingFields{v1alpha1.IndexRunUID: string(run.UID)}, client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("listing jobs: %w", err)
	}
	for i := range jobs.Items {
		job := &jobs.Items[i]
		if !ownedBy(job, run) || runstate.JobOutcome(job) != "" || !job.DeletionTimestamp.IsZero() {
			continue
		}
		err := r.Client.Delete(ctx, job.DeepCopy(), client.PropagationPolicy(metav1.DeletePropagationBackground))
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("stopping Job %s: %w", job.Name, err)
		}
	}
	return nil
}
