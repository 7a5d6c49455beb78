package controllers

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/render"
)

// Lifecycle holds the operator-wide defaults that keep runs from being stuck, piling up
// or running unbounded; each comes from a manager flag.
type Lifecycle struct {
	Watchdogs
	// DefaultTTLSecondsAfterFinished deletes finished runs that set no TTL; 0 keeps them.
	DefaultTTLSecondsAfterFinished int32
	// SuccessfulHistoryLimit and FailedHistoryLimit keep this many finished runs per
	// repository and branch (Cancelled counts as failed); a negative limit keeps all.
	SuccessfulHistoryLimit, FailedHistoryLimit int
	// MaxActiveRuns queues runs cluster-wide, in creation order; 0 is unlimited.
	MaxActiveRuns int
}

// LogReader reads the tail of a container's log, bounded in lines and bytes.
type LogReader interface {
	TailLog(ctx context.Context, namespace, pod, container string) (string, error)
}

// PodLogs reads logs through the pods/log subresource.
type PodLogs struct{ Client kubernetes.Interface }

// TailLog implements LogReader: at most 80 lines and 4 KiB, so a chatty step cannot make
// the operator read megabytes.
func (p PodLogs) TailLog(ctx context.Context, namespace, pod, container string) (string, error) {
	opts := &corev1.PodLogOptions{Container: container, TailLines: ptr.To[int64](80), LimitBytes: ptr.To[int64](civ1alpha1.MaxMessageBytes)}
	b, err := p.Client.CoreV1().Pods(namespace).GetLogs(pod, opts).DoRaw(ctx)
	return string(b), err
}

// reconcileStop ends an active run that was cancelled, ran past spec.timeout, or whose
// active pod tripped a watchdog. Otherwise it schedules a wake-up at the next deadline.
func (r *PipelineRunReconciler) reconcileStop(ctx context.Context, s *scope) error {
	run := s.run
	if run.Spec.Cancel {
		msg := "cancelled through spec.cancel"
		if by := run.Annotations[AnnotationReplacedBy]; by != "" {
			msg = fmt.Sprintf("replaced by the newer run %q", by)
		}
		return r.terminate(ctx, s, civ1alpha1.PhaseCancelled, civ1alpha1.ReasonCancelled, msg)
	}
	timeout := time.Hour
	if run.Spec.Timeout != nil {
		timeout = run.Spec.Timeout.Duration
	}
	deadline := run.Status.StartTime.Add(timeout)
	if !s.now.Before(deadline) {
		return r.terminate(ctx, s, civ1alpha1.PhaseFailed, civ1alpha1.ReasonTimedOut,
			fmt.Sprintf("the run exceeded its timeout of %s", timeout))
	}
	s.wakeAt(deadline)
	if job, _ := activeJob(s); job != nil {
		v := r.Lifecycle.checkPod(latestPod(s.pods, job.Name), s.now)
		if v.reason != "" {
			return r.terminate(ctx, s, civ1alpha1.PhaseFailed, v.reason, v.message)
		}
		s.wakeAt(v.next)
	}
	return nil
}

// activeJob is the Job that runs now, the clone's or a step's, with the step's index
// (-1 for the clone). A running step whose Job is gone returns a nil Job.
func activeJob(s *scope) (*batchv1.Job, int) {
	if s.cloneJob != nil && jobOutcome(s.cloneJob) == "" {
		return s.cloneJob, -1
	}
	steps := s.run.Status.Steps
	if i := nextStep(steps); i >= 0 && steps[i].Phase == civ1alpha1.StepRunning {
		return s.stepJobs[i], i
	}
	return nil, -1
}

// terminate ends the run, keeping the active step's log tail in its status and skipping
// the rest. The active Job is stopped on the next pass (stopActiveJobs), once the
// outcome is written: deleting it first could, if the status patch then failed, read as
// a Job someone else deleted.
func (r *PipelineRunReconciler) terminate(ctx context.Context, s *scope, phase civ1alpha1.PipelineRunPhase, reason, msg string) error {
	run := s.run
	job, idx := activeJob(s)
	tail := ""
	if job != nil {
		pod := latestPod(s.pods, job.Name)
		if t := terminated(pod); t != nil && t.Message != "" {
			tail = t.Message
		} else if pod != nil && r.Logs != nil && pod.Status.Phase == corev1.PodRunning {
			// Best effort: the log may be gone already; the run ends either way.
			tail, _ = r.Logs.TailLog(ctx, pod.Namespace, pod.Name, pod.Spec.Containers[0].Name)
		}
	}
	now := metav1.NewTime(s.now)
	if idx >= 0 {
		st := &run.Status.Steps[idx]
		st.Phase, st.Reason, st.CompletionTime = civ1alpha1.StepFailed, reason, now.DeepCopy()
		if phase == civ1alpha1.PhaseCancelled {
			st.Phase = civ1alpha1.StepCancelled
		}
		st.Message = msg
		if tail != "" {
			st.Message = truncate(tail, civ1alpha1.MaxMessageBytes)
		}
	}
	skipRemaining(run.Status.Steps, fmt.Sprintf("skipped: %s", reason), now)
	summarizeProgress(&run.Status)
	setFinished(&run.Status, phase, reason, msg, now)
	return nil
}

// stopActiveJobs deletes a finished run's Jobs that are still active (a timed-out,
// cancelled or watchdog-stopped step). Deleting sends SIGTERM, then the pod's grace
// period applies; finished Jobs stay for `kubectl logs`.
func (r *PipelineRunReconciler) stopActiveJobs(ctx context.Context, run *civ1alpha1.PipelineRun) error {
	jobs := &batchv1.JobList{}
	if err := r.Client.List(ctx, jobs, client.InNamespace(run.Namespace), client.MatchingLabels{render.LabelRunUID: string(run.UID)}); err != nil {
		return fmt.Errorf("listing jobs: %w", err)
	}
	for i := range jobs.Items {
		job := &jobs.Items[i]
		if !ownedBy(job, run) || jobOutcome(job) != "" || !job.DeletionTimestamp.IsZero() {
			continue
		}
		err := r.Client.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground))
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("stopping Job %s: %w", job.Name, err)
		}
	}
	return nil
}
