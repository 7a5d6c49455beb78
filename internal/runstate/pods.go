package runstate

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
