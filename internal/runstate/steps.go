package runstate

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/shorten"
)

// DeriveSteps derives every step of the run from its Job (by step index; a step without
// one keeps its state) and the Jobs' pods.
func DeriveSteps(run *v1alpha1.PipelineRun, jobs map[int]*batchv1.Job, pods []corev1.Pod) {
	for i := range run.Status.Steps {
		run.Status.Steps[i] = DeriveStep(run.Status.Steps[i], jobs[i], pods)
	}
}

// DeriveStep computes one step's status from its Job and the Job's newest pod: Running
// with its start while the Job runs, and its end (JobOutcome) with the exit code (0 for
// a success whose pod is not at hand), log tail and attempts. Terminal states are
// kept, so a Job removed after it finished does not rewrite history.
func DeriveStep(prev v1alpha1.StepStatus, job *batchv1.Job, pods []corev1.Pod) v1alpha1.StepStatus {
	st := prev
	if IsTerminal(st.Phase) || job == nil {
		return st
	}
	st.JobName = job.Name
	st.Phase = v1alpha1.StepRunning
	if st.Attempts == 0 {
		st.Attempts = 1 // its Job exists: the first attempt is under way
	}
	if job.Status.StartTime != nil {
		st.StartTime = job.Status.StartTime.DeepCopy()
	} else if st.StartTime == nil {
		t := job.CreationTimestamp
		st.StartTime = &t
	}
	// The exit code and the attempts are written with the step's outcome: a pod that
	// ended, or a retry the Job controller started, before the Job ended is not worth a
	// status write of its own.
	end := StepEnd{Attempts: job.Status.Active + job.Status.Succeeded + job.Status.Failed}
	if t := Terminated(LatestPod(pods, job)); t != nil {
		code := t.ExitCode
		end.ExitCode = &code
		end.Tail, end.Artifacts = SplitArtifactsReport(t.Message)
	}
	switch JobOutcome(job) {
	case batchv1.JobComplete:
		if end.ExitCode == nil {
			// A Job succeeds when its pod does, and a pod succeeds only when its
			// containers exited 0: the operator does not read a succeeded pod back.
			end.ExitCode = new(int32(0))
		}
		// The step ends at SuccessCriteriaMet, which the Job controller writes before
		// it counts the pod that succeeded (it is still among its uncounted pods): the
		// failed attempts are counted, the successful one may not be yet.
		end.Attempts = max(end.Attempts, job.Status.Failed+1)
		EndStep(&st, end, SucceededAt(job))
	case batchv1.JobFailed:
		c := jobCondition(job, batchv1.JobFailed)
		end.Reason = v1alpha1.ReasonStepFailed
		if c.Reason == batchv1.JobReasonDeadlineExceeded {
			end.Reason = v1alpha1.ReasonStepTimedOut
		}
		if end.Tail == "" {
			end.Tail = c.Message
		}
		EndStep(&st, end, c.LastTransitionTime)
	}
	return st
}

// StepEnd is how a step ended: its container's exit code (nil when none ran to an end),
// the reason it failed ("" when it succeeded), the tail of its log, and how many times
// it was started.
type StepEnd struct {
	ExitCode *int32
	Reason   string
	Tail     string
	Attempts int32
	// Artifacts is what the step's wrapper reported it kept, if it keeps any.
	Artifacts *v1alpha1.StepArtifacts
}

// EndStep ends a step that has not ended: Succeeded without a reason, or Failed with
// the reason and the tail of its log (bounded to a status message), with its exit code,
// attempts and completion time. The operator ends steps through it from their Jobs
// (DeriveStep), the local runner from its processes, so both record an end alike.
func EndStep(s *v1alpha1.StepStatus, e StepEnd, at metav1.Time) {
	if IsTerminal(s.Phase) {
		return
	}
	s.CompletionTime = at.DeepCopy()
	s.ExitCode, s.Artifacts = e.ExitCode, e.Artifacts
	if e.Attempts > 0 {
		s.Attempts = e.Attempts
	}
	if e.Reason == "" {
		s.Phase, s.Reason, s.Message = v1alpha1.StepSucceeded, "", ""
		// A success after a failed attempt: the step is flaky, or its retries hide a
		// real failure now and then.
		s.Flaky = s.Attempts > 1
		return
	}
	s.Phase, s.Reason, s.Message = v1alpha1.StepFailed, e.Reason, shorten.Tail(e.Tail, v1alpha1.MaxMessageBytes)
}

// StartStep marks a pending step Running from now, for its first attempt.
func StartStep(s *v1alpha1.StepStatus, now metav1.Time) {
	s.Phase, s.StartTime, s.Attempts = v1alpha1.StepRunning, now.DeepCopy(), 1
}

// IsTerminal reports whether a step has ended.
func IsTerminal(p v1alpha1.StepPhase) bool {
	return p == v1alpha1.StepSucceeded || p == v1alpha1.StepFailed || p == v1alpha1.StepSkipped || p == v1alpha1.StepCancelled
}

// Active lists the steps that run now, in index order.
func Active(steps []v1alpha1.StepStatus) []int {
	var out []int
	for i, s := range steps {
		if s.Phase == v1alpha1.StepRunning {
			out = append(out, i)
		}
	}
	return out
}

// FailStep ends a running step that failed outside its Job's own outcome (a watchdog
// on its pod, its Job deleted): the graph then goes on as after any failure.
func FailStep(run *v1alpha1.PipelineRun, i int, reason, msg string, now metav1.Time) {
	s := &run.Status.Steps[i]
	if IsTerminal(s.Phase) {
		return
	}
	s.Phase, s.Reason, s.CompletionTime = v1alpha1.StepFailed, reason, now.DeepCopy()
	s.Message = shorten.Tail(msg, v1alpha1.MaxMessageBytes)
}
