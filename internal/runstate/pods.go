package runstate

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// JobOutcome is how the Job ended, at the earliest true sign: Complete once its success
// criteria are met (SuccessCriteriaMet, which the Job controller writes as soon as the
// pod succeeded and before Complete, when it has cleaned up after the pod), Failed once
// it failed (not FailureTarget: its pods may still run), and "" while it runs. A step's
// dependents start on SuccessCriteriaMet; nothing of a success is decided after it.
func JobOutcome(j *batchv1.Job) batchv1.JobConditionType {
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobFailed:
			return batchv1.JobFailed
		case batchv1.JobComplete, batchv1.JobSuccessCriteriaMet:
			return batchv1.JobComplete
		}
	}
	return ""
}

// SucceededAt is when a Job's success was decided: its completion time once Complete,
// else when its success criteria were met.
func SucceededAt(j *batchv1.Job) metav1.Time {
	if t := j.Status.CompletionTime; t != nil {
		return *t
	}
	for _, t := range []batchv1.JobConditionType{batchv1.JobComplete, batchv1.JobSuccessCriteriaMet} {
		if c := jobCondition(j, t); c != nil {
			return c.LastTransitionTime
		}
	}
	return metav1.Time{}
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
