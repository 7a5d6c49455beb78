package render

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// RenderWorkspace renders the run's PersistentVolumeClaim, shared by the
// clone and every step.
func RenderWorkspace(run *v1alpha1.PipelineRun) *corev1.PersistentVolumeClaim {
	ws := run.Spec.Workspace
	size := ws.SizeOrDefault()
	modes := []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	if len(ws.AccessModes) > 0 {
		modes = append([]corev1.PersistentVolumeAccessMode(nil), ws.AccessModes...)
	}
	var class *string
	if ws.StorageClassName != nil {
		class = new(*ws.StorageClassName)
	}
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: objectMeta(run, WorkspaceName(run), Labels(run, v1alpha1.ComponentWorkspace)),
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      modes,
			StorageClassName: class,
			VolumeMode:       new(corev1.PersistentVolumeFilesystem),
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: size},
			},
		},
	}
}
