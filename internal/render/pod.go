package render

import (
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// Paths inside clone and step pods.
const (
	// WorkspaceMount is where the run's PVC is mounted.
	WorkspaceMount = "/workspace"
	// SourceDir holds the checkout; steps run in it.
	SourceDir = WorkspaceMount + "/src"
	// HomeDir is $HOME of steps, on the volume so caches survive between
	// steps of a run.
	HomeDir = WorkspaceMount + "/home"
)

const workspaceVolume = "workspace"

// objectMeta is the metadata of a child: in the run's namespace, controlled
// by the run so it is garbage-collected with it and the controller is woken
// by its changes.
func objectMeta(run *v1alpha1.PipelineRun, name string, labels map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:            name,
		Namespace:       run.Namespace,
		Labels:          labels,
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(run, v1alpha1.GroupVersion.WithKind("PipelineRun"))},
	}
}

// workspaceVolumeSource mounts the run's PVC.
func workspaceVolumeSource(run *v1alpha1.PipelineRun) corev1.Volume {
	return corev1.Volume{
		Name: workspaceVolume,
		VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: WorkspaceName(run)},
		},
	}
}

func workspaceMount() corev1.VolumeMount {
	return corev1.VolumeMount{Name: workspaceVolume, MountPath: WorkspaceMount}
}

// escapeExpansion makes s reach the container literally. The kubelet expands
// $(VAR) in command, args and env values and turns $$ into $, so a script
// using $$ (the shell's pid) or $(CI) would otherwise change meaning.
func escapeExpansion(s string) string {
	return strings.ReplaceAll(s, "$", "$$")
}

func env(name, value string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, Value: escapeExpansion(value)}
}

// objectMetaForPod is a pod template's metadata: its own copy of the
// labels, and the run's full name in v1alpha1.AnnotationRunName.
func objectMetaForPod(run *v1alpha1.PipelineRun, labels map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Labels:      maps.Clone(labels),
		Annotations: map[string]string{v1alpha1.AnnotationRunName: run.Name},
	}
}
