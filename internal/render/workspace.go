package render

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// defaultWorkspaceSize applies when spec.workspace.size is unset, matching
// the CRD default for runs created before defaulting or by tests.
var defaultWorkspaceSize = resource.MustParse("1Gi")

// RenderWorkspace renders the run's PersistentVolumeClaim, shared by the
// clone and every step.
func RenderWorkspace(run *v1alpha1.PipelineRun) *corev1.PersistentVolumeClaim {
	ws := run.Spec.Workspace
	size := defaultWorkspaceSize.DeepCopy()
	if ws.Size != nil {
		size = ws.Size.DeepCopy()
	}
	modes := []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	if len(ws.AccessModes) > 0 {
		modes = append([]corev1.PersistentVolumeAccessMode(nil), ws.AccessModes...)
	}
	var class *string
	if ws.StorageClassName != nil {
		class = new(*ws.StorageClassName)
	}
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: objectMeta(run, WorkspaceName(run), Labels(run, ComponentWorkspace)),
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
