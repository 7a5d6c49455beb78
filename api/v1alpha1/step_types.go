package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// StepStatus is the observed state of one step, derived from its Job and pod.
type StepStatus struct {
	// Name of the step, from the pipeline file.
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Index of the step in the pipeline (its steps, then its finally steps), from 0.
	Index int32 `json:"index"`
	// DependsOn names the steps this one waits for, as resolved from the file.
	// +optional
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:MaxLength=63
	// +listType=atomic
	DependsOn []string `json:"dependsOn,omitempty"`
	// Finally is true for a step of the file's finally list: it runs after the graph.
	// +optional
	Finally bool `json:"finally,omitempty"`
	// Phase of the step.
	Phase StepPhase `json:"phase"`
	// JobName is the step's Job, set once the Job exists.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	JobName string `json:"jobName,omitempty"`
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// Attempts is how many pods the step's Job started; more than one when it was
	// retried (the step's retries) or a pod was disrupted.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`
	// ExitCode of the step's container, once it terminated.
	// +optional
	ExitCode *int32 `json:"exitCode,omitempty"`
	// Reason is a CamelCase reason when the step did not succeed.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Reason string `json:"reason,omitempty"`
	// Message is the tail of a failed step's log, or why it was skipped.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Message string `json:"message,omitempty"`
	// Artifacts is what the step kept in the archive.
	// +optional
	Artifacts *StepArtifacts `json:"artifacts,omitempty"`
	// Flaky is true for a step that failed and then succeeded on a retry.
	// +optional
	Flaky bool `json:"flaky,omitempty"`
	// Timing records when each of the step's phases began (docs/timeline.md).
	// +optional
	Timing *StepTiming `json:"timing,omitempty"`
}
