package render

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// DefinitionName is the name of the ConfigMap that pins the run's pipeline file.
func DefinitionName(run *v1alpha1.PipelineRun) string {
	return childName(run.Name, "-def", identity(run.Name, v1alpha1.ComponentDefinition))
}

// RenderDefinition renders the immutable ConfigMap that records the pipeline file read
// at commit. It is the run's durable record of what it builds: a restarted controller
// reads it instead of resolving the branch again.
func RenderDefinition(run *v1alpha1.PipelineRun, commit string, raw []byte) *corev1.ConfigMap {
	meta := objectMeta(run, DefinitionName(run), Labels(run, v1alpha1.ComponentDefinition))
	meta.Annotations = map[string]string{v1alpha1.AnnotationCommit: commit}
	return &corev1.ConfigMap{
		ObjectMeta: meta,
		Immutable:  new(true),
		Data:       map[string]string{v1alpha1.DefinitionKey: string(raw)},
	}
}
