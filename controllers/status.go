package controllers

import (
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/pipeline"
)

// Status derivation: pure functions from the run's children to its status. None of them
// talks to the API server, so each has table tests (status_test.go).

// pin records the commit and definition once; steps are planned as Pending.
func pin(st *civ1alpha1.PipelineRunStatus, commit string, def *pipeline.Definition) {
	st.Commit, st.ShortCommit = commit, shortSHA(commit)
	st.PipelineName = def.Pipeline.Name
	st.DefinitionDigest = def.Digest
	if len(st.Steps) != len(def.Pipeline.Steps) {
		st.Steps = make([]civ1alpha1.StepStatus, len(def.Pipeline.Steps))
		for i, step := range def.Pipeline.Steps {
			st.Steps[i] = civ1alpha1.StepStatus{Name: step.Name, Index: int32(i), Phase: civ1alpha1.StepPending}
		}
	}
	if st.Progress == "" {
		st.Progress = fmt.Sprintf("0/%d", len(st.Steps))
	}
}

func shortSHA(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// jobOutcome is Complete or Failed once the Job controller set that condition to True,
// and "" while the Job is active. Interim conditions (SuccessCriteriaMet, FailureTarget)
// are not terminal: the pods may still be terminating.
func jobOutcome(j *batchv1.Job) batchv1.JobConditionType {
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

// latestPod is the newest pod of the Job named jobName.
func latestPod(pods []corev1.Pod, jobName string) *corev1.Pod {
	var latest *corev1.Pod
	for i := range pods {
		p := &pods[i]
		if p.Labels[batchv1.JobNameLabel] != jobName {
			continue
		}
		if latest == nil || latest.CreationTimestamp.Before(&p.CreationTimestamp) {
			latest = p
		}
	}
	return latest
}

// terminated is the terminated state of the pod's main container, if it ended.
func terminated(p *corev1.Pod) *corev1.ContainerStateTerminated {
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

// deriveStep computes one step's status from its Job and the Job's newest pod. Terminal
// states are kept, so a Job removed after it finished does not rewrite history.
func deriveStep(prev civ1alpha1.StepStatus, job *batchv1.Job, pods []corev1.Pod) civ1alpha1.StepStatus {
	st := prev
	if isTerminalStep(st.Phase) || job == nil {
		return st
	}
	st.JobName = job.Name
	st.Phase = civ1alpha1.StepRunning
	st.Attempts = job.Status.Active + job.Status.Succeeded + job.Status.Failed
	if job.Status.StartTime != nil {
		st.StartTime = job.Status.StartTime.DeepCopy()
	} else if st.StartTime == nil {
		t := job.CreationTimestamp
		st.StartTime = &t
	}
	t := terminated(latestPod(pods, job.Name))
	if t != nil {
		code := t.ExitCode
		st.ExitCode = &code
	}
	switch jobOutcome(job) {
	case batchv1.JobComplete:
		st.Phase = civ1alpha1.StepSucceeded
		st.CompletionTime = job.Status.CompletionTime.DeepCopy()
		if st.CompletionTime == nil {
			st.CompletionTime = jobCondition(job, batchv1.JobComplete).LastTransitionTime.DeepCopy()
		}
		st.Reason, st.Message = "", ""
	case batchv1.JobFailed:
		c := jobCondition(job, batchv1.JobFailed)
		st.Phase = civ1alpha1.StepFailed
		st.CompletionTime = c.LastTransitionTime.DeepCopy()
		st.Reason = civ1alpha1.ReasonStepFailed
		if c.Reason == batchv1.JobReasonDeadlineExceeded {
			st.Reason = civ1alpha1.ReasonStepTimedOut
		}
		st.Message = c.Message
		if t != nil && t.Message != "" {
			st.Message = t.Message
		}
		st.Message = truncate(st.Message, civ1alpha1.MaxMessageBytes)
	}
	return st
}

func isTerminalStep(p civ1alpha1.StepPhase) bool {
	return p == civ1alpha1.StepSucceeded || p == civ1alpha1.StepFailed || p == civ1alpha1.StepSkipped || p == civ1alpha1.StepCancelled
}

// nextStep is the first step that has not succeeded, or -1 when all have.
func nextStep(steps []civ1alpha1.StepStatus) int {
	for i := range steps {
		if steps[i].Phase != civ1alpha1.StepSucceeded {
			return i
		}
	}
	return -1
}

// summarize sets progress, the current step and, once the outcome is known, the
// terminal phase and Succeeded condition.
func summarize(st *civ1alpha1.PipelineRunStatus, now metav1.Time) {
	summarizeProgress(st)
	st.CurrentStep = ""
	next := nextStep(st.Steps)
	switch {
	case next < 0:
		st.CurrentStep = ""
		setFinished(st, civ1alpha1.PhaseSucceeded, civ1alpha1.ReasonSucceeded,
			fmt.Sprintf("all %d steps succeeded at %s", len(st.Steps), st.ShortCommit), now)
	case st.Steps[next].Phase == civ1alpha1.StepFailed:
		failed := st.Steps[next]
		msg := fmt.Sprintf("step %q failed", failed.Name)
		if failed.ExitCode != nil {
			msg = fmt.Sprintf("step %q failed with exit code %d", failed.Name, *failed.ExitCode)
		}
		if failed.Reason == civ1alpha1.ReasonStepTimedOut {
			msg = fmt.Sprintf("step %q exceeded its timeout", failed.Name)
		}
		skipRemaining(st.Steps, fmt.Sprintf("skipped: step %q failed", failed.Name), now)
		setFinished(st, civ1alpha1.PhaseFailed, failed.Reason, msg, now)
	case st.Steps[next].Phase == civ1alpha1.StepRunning:
		st.CurrentStep = st.Steps[next].Name
		if c := apimeta.FindStatusCondition(st.Conditions, civ1alpha1.ConditionSucceeded); c != nil {
			c.Message = fmt.Sprintf("running step %d/%d %q", next+1, len(st.Steps), st.Steps[next].Name)
		}
	}
}

// summarizeProgress sets progress: succeeded steps over all steps.
func summarizeProgress(st *civ1alpha1.PipelineRunStatus) {
	done := 0
	for _, s := range st.Steps {
		if s.Phase == civ1alpha1.StepSucceeded {
			done++
		}
	}
	st.Progress = fmt.Sprintf("%d/%d", done, len(st.Steps))
}

// skipRemaining marks every step that has not finished as Skipped.
func skipRemaining(steps []civ1alpha1.StepStatus, msg string, now metav1.Time) {
	for i := range steps {
		if !isTerminalStep(steps[i].Phase) {
			steps[i].Phase = civ1alpha1.StepSkipped
			steps[i].Message = msg
			if steps[i].StartTime != nil {
				steps[i].CompletionTime = now.DeepCopy()
			}
		}
	}
}

// setFinished ends the run once; the first outcome wins.
func setFinished(st *civ1alpha1.PipelineRunStatus, phase civ1alpha1.PipelineRunPhase, reason, msg string, now metav1.Time) {
	if st.Phase.IsFinished() {
		return
	}
	status := metav1.ConditionFalse
	if phase == civ1alpha1.PhaseSucceeded {
		status = metav1.ConditionTrue
	}
	st.Phase = phase
	st.CurrentStep = ""
	st.CompletionTime = now.DeepCopy()
	apimeta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: civ1alpha1.ConditionSucceeded, Status: status, Reason: reason,
		Message: truncate(msg, civ1alpha1.MaxMessageBytes), LastTransitionTime: now,
	})
}
