package render

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

const (
	// ComponentDefinition labels the ConfigMap that pins a run's pipeline file.
	ComponentDefinition = "definition"
	// DefinitionKey is the ConfigMap key holding the pipeline file's raw bytes.
	DefinitionKey = "flow-ci.yaml"
	// AnnotationCommit records the commit the definition was read at.
	AnnotationCommit = "flowci.dev/commit"
	// AnnotationRunName on pod templates names the run, so that a pod event can be
	// mapped to its run even when LabelRun had to be shortened.
	AnnotationRunName = "flowci.dev/pipelinerun-name"
)

// DefinitionName is the name of the ConfigMap that pins the run's pipeline file.
func DefinitionName(run *v1alpha1.PipelineRun) string {
	return childName(run.Name, "-def", identity(run.Name, ComponentDefinition))
}

// RenderDefinition renders the immutable ConfigMap that records the pipeline file read
// at commit. It is the run's durable record of what it builds: a restarted controller
// reads it instead of resolving the branch again.
func RenderDefinition(run *v1alpha1.PipelineRun, commit string, raw []byte) *corev1.ConfigMap {
	meta := objectMeta(run, DefinitionName(run), Labels(run, ComponentDefinition))
	meta.Annotations = map[string]string{AnnotationCommit: commit}
	return &corev1.ConfigMap{
		ObjectMeta: meta,
		Immutable:  new(true),
		Data:       map[string]string{DefinitionKey: string(raw)},
	}
}

// PinnedNode returns the node a rendered step Job is pinned to, or "".
func PinnedNode(job *batchv1.Job) string {
	a := job.Spec.Template.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return ""
	}
	for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, f := range term.MatchFields {
			if f.Key == "metadata.name" && len(f.Values) == 1 {
				return f.Values[0]
			}
		}
	}
	return ""
}
