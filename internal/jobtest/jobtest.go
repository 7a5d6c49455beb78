// Package jobtest builds the objects the Job controller and kubelet would, for tests and
// benchmarks that run against envtest, where neither runs. It only constructs objects.
package jobtest

import (
	"maps"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PodFor is the pod the Job controller would create for job: its template, the
// template's labels plus the job-name and controller-uid labels (the API server puts
// both on a Job's template; they are set here too for a Job read back trimmed), and
// the Job as controlling owner.
func PodFor(job *batchv1.Job) *corev1.Pod {
	labels := map[string]string{batchv1.JobNameLabel: job.Name, batchv1.ControllerUidLabel: string(job.UID)}
	maps.Copy(labels, job.Spec.Template.Labels)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: job.Name + "-pod", Namespace: job.Namespace,
			Labels:          labels,
			Annotations:     job.Spec.Template.Annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(job, batchv1.SchemeGroupVersion.WithKind("Job"))},
		},
		Spec: *job.Spec.Template.Spec.DeepCopy(),
	}
}
