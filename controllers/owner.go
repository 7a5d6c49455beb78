package controllers

import (
	"context"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ControllingJob is the Job that controls pod: the one its controller reference names,
// with the UID it names, read from the first of readers that has it (a cache, then the
// API server: a pod can be listed before the cache has its Job). Nil for a pod no Job
// controls, or whose reference names a Job that is not (or no longer) that one: anyone
// who may create pods can copy a step pod's labels and even its owner reference's name.
func ControllingJob(ctx context.Context, pod *corev1.Pod, readers ...client.Reader) *batchv1.Job {
	ref := metav1.GetControllerOf(pod)
	if ref == nil || ref.Kind != "Job" {
		return nil
	}
	for _, r := range readers {
		job := &batchv1.Job{}
		err := r.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: ref.Name}, job)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil || job.UID != ref.UID {
			return nil
		}
		return job
	}
	return nil
}
