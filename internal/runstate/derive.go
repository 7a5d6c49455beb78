// Package runstate owns every change to a PipelineRun's status. It is pure: it derives
// steps from the run's Jobs and pods, moves the run through its phases, decides which
// steps may start, ends a run (one function, End, for every way a run ends) and lists
// what changed in a pass (Transitions), from which the controller makes events.
//
// Nothing here talks to the API server, so every function has table tests.
package runstate

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/shorten"
)

// JobOutcome is Complete or Failed once the Job controller set that condition to True,
// and "" while the Job is active. Interim conditions (SuccessCriteriaMet, FailureTarget)
// are not terminal: the pods may still be terminating.
func JobOutcome(j *batchv1.Job) batchv1.JobConditionType {
	for _, c := range j.Status.Conditions {
		if c.Status == corev1.ConditionTrue && (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) {
			return c.Type
		}
	}
	return ""
}

func jobCondition(j *batchv1.Job, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range j.Status.Conditions {
		if j.Status.Conditions[i].Type == t && j.Status.Conditions[i].Status == corev1.ConditionTrue {
			return &j.Status.Conditions[i]
		}
	}
	return nil
}

// LatestPod is the newest of pods that job controls (by UID). A pod that only carries
// the Job's labels, as anyone who may create pods can forge, is not the Job's.
func LatestPod(pods []corev1.Pod, job *batchv1.Job) *corev1.Pod {
	var latest *corev1.Pod
	for i := range pods {
		p := &pods[i]
		if ref := metav1.GetControllerOf(p); ref == nil || ref.UID != job.UID || ref.Kind != "Job" {
			continue
		}
		if latest == nil || latest.CreationTimestamp.Before(&p.CreationTimestamp) {
			latest = p
		}
	}
	return latest
}

// Terminated is the terminated state of the pod's main container, if it ended.
func Terminated(p *corev1.Pod) *corev1.ContainerStateTerminated {
	if p == nil {
		return nil
	}
	for _, cs := range p.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil {
			return t
		}
	}
	return nil
}

// DeriveSteps derives every step of the run from its Job (by step index; a step without
// one keeps its state) and the Jobs' pods.
func DeriveSteps(run *v1alpha1.PipelineRun, jobs map[int]*batchv1.Job, pods []corev1.Pod) {
	for i := range run.Status.Steps {
		run.Status.Steps[i] = DeriveStep(run.Status.Steps[i], jobs[i], pods)
	}
}

// DeriveStep computes one step's status from its Job and the Job's newest pod. Terminal
// states are kept, so a Job removed after it finished does not rewrite history.
func DeriveStep(prev v1alpha1.StepStatus, job *batchv1.Job, pods []corev1.Pod) v1alpha1.StepStatus {
	st := prev
	if IsTerminal(st.Phase) || job == nil {
		return st
	}
	st.JobName = job.Name
	st.Phase = v1alpha1.StepRunning
	st.Attempts = job.Status.Active + job.Status.Succeeded + job.Status.Failed
	if job.Status.StartTime != nil {
		st.StartTime = job.Status.StartTime.DeepCopy()
	} else if st.StartTime == nil {
		t := job.CreationTimestamp
		st.StartTime = &t
	}
	// The exit code is written with the step's outcome: a pod that ended before its Job
	// did is not worth a status write of its own.
	t := Terminated(LatestPod(pods, job))
	if t != nil && JobOutcome(job) != "" {
		code := t.ExitCode
		st.ExitCode = &code
	}
	switch JobOutcome(job) {
	case batchv1.JobComplete:
		st.Phase = v1alpha1.StepSucceeded
		st.CompletionTime = job.Status.CompletionTime.DeepCopy()
		if st.CompletionTime == nil {
			st.CompletionTime = jobCondition(job, batchv1.JobComplete).LastTransitionTime.DeepCopy()
		}
		st.Reason, st.Message = "", ""
	case batchv1.JobFailed:
		c := jobCondition(job, batchv1.JobFailed)
		st.Phase = v1alpha1.StepFailed
		st.CompletionTime = c.LastTransitionTime.DeepCopy()
		st.Reason = v1alpha1.ReasonStepFailed
		if c.Reason == batchv1.JobReasonDeadlineExceeded {
			st.Reason = v1alpha1.ReasonStepTimedOut
		}
		st.Message = c.Message
		if t != nil && t.Message != "" {
			st.Message = t.Message
		}
		st.Message = shorten.Tail(st.Message, v1alpha1.MaxMessageBytes)
	}
	return st
}

// IsTerminal reports whether a step has ended.
func IsTerminal(p v1alpha1.StepPhase) bool {
	return p == v1alpha1.StepSucceeded || p == v1alpha1.StepFailed || p == v1alpha1.StepSkipped || p == v1alpha1.StepCancelled
}
