package pipelinerun

import (
	"context"
	"fmt"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/pipeline"
	"github.com/flow-ci/flow-ci/internal/runstate"
	"github.com/flow-ci/flow-ci/internal/shorten"
)

// reconcileStop stops what must stop: a cancelled run, a run past spec.timeout, a
// clone or step whose pod tripped a watchdog. It may stop the graph (its running steps
// end with their log tails, its finally steps go on), fail a step, or end the run (and
// is then done); otherwise it schedules a wake-up at the next deadline.
func (r *Reconciler) reconcileStop(ctx context.Context, s *scope) (bool, error) {
	if r.checkDeadline(ctx, s); s.run.Status.Phase.IsFinished() {
		return true, nil
	}
	active := activeJobs(s)
	lost := r.lostNode(ctx, s, active)
	if lost.Reason != "" {
		// No log tails: they would be read from the lost node's kubelet.
		runstate.End(s.run, runstate.Ending{Phase: v1alpha1.PhaseFailed, Reason: lost.Reason, Message: lost.Message}, metav1.NewTime(s.now))
		return true, nil
	}
	s.wakeAt(lost.Next)
	for _, a := range active {
		pod := runstate.LatestPod(s.pods, a.job)
		if pod == nil && r.Lifecycle.Unschedulable > 0 {
			// No pod yet, and pod creations do not reconcile: look again when a pod
			// created with the Job would have to be scheduled.
			s.wakeAt(a.job.CreationTimestamp.Add(r.Lifecycle.Unschedulable))
		}
		v := r.Lifecycle.CheckPod(pod, s.now)
		switch {
		case v.Reason == "":
			s.wakeAt(v.Next)
		case a.step < 0:
			r.stopRun(ctx, s, v1alpha1.PhaseFailed, v.Reason, v.Message)
			return true, nil
		default:
			// The step fails, its Job is deleted once that is written (stopEndedJobs),
			// and the graph goes on as after any failure.
			msg := v.Message
			if v.Reason == v1alpha1.ReasonServiceNotReady {
				msg = r.withServiceTail(ctx, pod, s.def.Pipeline.Step(a.step), msg)
			}
			runstate.FailStep(s.run, a.step, v.Reason, msg, metav1.NewTime(s.now))
		}
	}
	return false, nil
}

// checkDeadline stops a cancelled run or one past spec.timeout. Once the clone has
// succeeded, the first cancel and the timeout stop the graph and let the finally steps
// run (StopGraph), within spec.timeout plus --finally-grace; spec.abort, and either
// before the clone succeeded, end the run at once.
func (r *Reconciler) checkDeadline(ctx context.Context, s *scope) {
	run := s.run
	started := graphStarted(s)
	if run.Spec.Cancel || run.Spec.Abort {
		msg := "cancelled through spec.cancel"
		if by := run.Annotations[v1alpha1.AnnotationReplacedBy]; by != "" {
			msg = fmt.Sprintf("replaced by the newer run %q", by)
		}
		if run.Spec.Abort {
			r.stopRun(ctx, s, v1alpha1.PhaseCancelled, v1alpha1.ReasonCancelled, "aborted through spec.abort")
			return
		}
		if !started {
			r.stopRun(ctx, s, v1alpha1.PhaseCancelled, v1alpha1.ReasonCancelled, msg)
			return
		}
		r.stopGraph(ctx, s, v1alpha1.ReasonCancelled, msg)
	}
	timeout := run.Spec.TimeoutOrDefault()
	deadline := run.Status.StartTime.Add(timeout)
	msg := fmt.Sprintf("the run exceeded its timeout of %s", timeout)
	switch grace := r.Lifecycle.finallyGrace(); {
	case s.now.Before(deadline):
		s.wakeAt(deadline)
	case !started:
		r.stopRun(ctx, s, v1alpha1.PhaseFailed, v1alpha1.ReasonTimedOut, msg)
	case s.now.Before(deadline.Add(grace)):
		r.stopGraph(ctx, s, v1alpha1.ReasonTimedOut, msg)
		s.wakeAt(deadline.Add(grace))
	default:
		phase, reason := v1alpha1.PhaseFailed, v1alpha1.ReasonTimedOut
		if run.Spec.Cancel {
			phase, reason, msg = v1alpha1.PhaseCancelled, v1alpha1.ReasonCancelled, "cancelled through spec.cancel"
		}
		r.stopRun(ctx, s, phase, reason, fmt.Sprintf("%s; its finally steps were stopped after --finally-grace (%s)", msg, grace))
	}
}

// graphStarted says whether the clone succeeded, so that finally steps can run.
func graphStarted(s *scope) bool {
	if len(s.stepJobs) > 0 || s.cloneJob != nil && runstate.JobOutcome(s.cloneJob) == batchv1.JobComplete {
		return true
	}
	for _, st := range s.run.Status.Steps {
		if st.Phase != v1alpha1.StepPending {
			return true
		}
	}
	return false
}

type activeJob struct {
	step int // -1 for the clone
	job  *batchv1.Job
}

// activeJobs are the Jobs that run now: the clone's, or the running steps'.
func activeJobs(s *scope) []activeJob {
	var out []activeJob
	if s.cloneJob != nil && runstate.JobOutcome(s.cloneJob) == "" {
		out = append(out, activeJob{-1, s.cloneJob})
	}
	for _, i := range runstate.Active(s.run.Status.Steps) {
		if j := s.stepJobs[i]; j != nil {
			out = append(out, activeJob{i, j})
		}
	}
	return out
}

// stopGraph stops the graph's running steps, keeping their log tails, and lets the
// finally steps run. The Jobs are deleted once that is written (stopEndedJobs).
func (r *Reconciler) stopGraph(ctx context.Context, s *scope, reason, msg string) {
	if runstate.GraphStopped(s.run) {
		return
	}
	tails := r.logTails(ctx, s, runstate.Active(s.run.Status.Steps))
	runstate.StopGraph(s.run, s.graph, reason, msg, tails, metav1.NewTime(s.now))
}

// stopRun ends the run, keeping each running step's log tail in its status. The Jobs
// are deleted once the outcome is written (cleanupFinished): deleting them first could,
// if the status patch then failed, read as Jobs someone else deleted.
func (r *Reconciler) stopRun(ctx context.Context, s *scope, phase v1alpha1.PipelineRunPhase, reason, msg string) {
	tails := r.logTails(ctx, s, runstate.Active(s.run.Status.Steps))
	runstate.End(s.run, runstate.Ending{Phase: phase, Reason: reason, Message: msg, Tails: tails}, metav1.NewTime(s.now))
}

// logTails reads the log tails of the steps at idx.
func (r *Reconciler) logTails(ctx context.Context, s *scope, idx []int) map[int]string {
	tails := map[int]string{}
	for _, i := range idx {
		if job := s.stepJobs[i]; job != nil {
			tails[i] = r.logTail(ctx, runstate.LatestPod(s.pods, job))
		}
	}
	return tails
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
	tail, _ := r.Logs.TailLog(ctx, pod.Namespace, pod.Name, pod.Spec.Containers[0].Name, false)
	return tail
}

// withServiceTail adds to the message of a step whose service never got ready the end
// of that service's log before its last restart: why it exited, or what it was doing
// while its check failed. Best effort, like logTail.
func (r *Reconciler) withServiceTail(ctx context.Context, pod *corev1.Pod, step *pipeline.Step, msg string) string {
	cs := runstate.ServiceNotReady(pod)
	if cs == nil {
		return msg
	}
	msg += serviceCheckHint(step, runstate.ServiceName(cs.Name))
	if r.Logs == nil {
		return msg
	}
	tail, err := r.Logs.TailLog(ctx, pod.Namespace, pod.Name, cs.Name, true)
	if err != nil || strings.TrimSpace(tail) == "" {
		return msg
	}
	return shorten.Tail(msg+"; its log ends with:\n"+tail, v1alpha1.MaxMessageBytes)
}

// serviceCheckHint names the service's readiness check; a TCP check connects to the
// pod's IP, which a server that listens on 127.0.0.1 only never accepts.
func serviceCheckHint(step *pipeline.Step, name string) string {
	for _, svc := range step.Services {
		if svc.Name != name || svc.Ready == nil {
			continue
		}
		hint := fmt.Sprintf("; its check was %s within %s", svc.Ready, svc.Ready.Timeout)
		if svc.Ready.TCP > 0 {
			hint += " (on the pod's IP: a server listening on 127.0.0.1 only needs a command check)"
		}
		return hint
	}
	return ""
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

// stopEndedJobs deletes the Jobs that still run for steps whose status ended without
// them (failFast, a cancel or the timeout stopped them, a watchdog failed them), once
// that status is written; the finally steps go on meanwhile.
func (r *Reconciler) stopEndedJobs(ctx context.Context, s *scope) error {
	for i, job := range s.stepJobs {
		if job == nil || i >= len(s.run.Status.Steps) || !runstate.IsTerminal(s.run.Status.Steps[i].Phase) ||
			runstate.JobOutcome(job) != "" || !job.DeletionTimestamp.IsZero() {
			continue
		}
		err := r.Client.Delete(ctx, job.DeepCopy(), client.PropagationPolicy(metav1.DeletePropagationBackground))
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("stopping Job %s: %w", job.Name, err)
		}
	}
	return nil
}
