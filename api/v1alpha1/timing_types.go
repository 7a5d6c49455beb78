package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// RunTiming records where a run's time went before and around its steps: with the
// run's creation and startTime it gives its queue time (creation to startTime), its
// admission (startTime to the clone Job: the commit, the definition, the workspace) and
// its clone. docs/timeline.md.
type RunTiming struct {
	// CloneStartTime is when the clone Job was created.
	// +optional
	CloneStartTime *metav1.Time `json:"cloneStartTime,omitempty"`
	// CloneCompletionTime is when the clone ended: the graph could start.
	// +optional
	CloneCompletionTime *metav1.Time `json:"cloneCompletionTime,omitempty"`
	// CriticalPath names, first to last, the steps that decided when the run ended:
	// from the step that ended last, each step's latest-ending dependency. Set when
	// the run ends.
	// +optional
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:MaxLength=253
	// +listType=atomic
	CriticalPath []string `json:"criticalPath,omitempty"`
}

// StepTiming records a step's phases, as the times each began, from the Job and its
// pod (its last attempt's). A time not observed (the operator restarted while the pod
// ran, or the pod went away unseen) is left out, and so is the phase it begins.
type StepTiming struct {
	// ReadyTime is when the step could start: its dependencies (or, for a root, the
	// clone; for a finally step, the graph) had ended. Waiting for dependencies is
	// from the clone's end to it.
	// +optional
	ReadyTime *metav1.Time `json:"readyTime,omitempty"`
	// JobCreationTime is when the operator created the step's Job (the handoff is
	// from ReadyTime to it).
	// +optional
	JobCreationTime *metav1.Time `json:"jobCreationTime,omitempty"`
	// PodCreationTime is when the Job's last pod was created; later than the Job for
	// a step that was retried (its earlier attempts).
	// +optional
	PodCreationTime *metav1.Time `json:"podCreationTime,omitempty"`
	// ScheduledTime is when the scheduler bound the pod to a node.
	// +optional
	ScheduledTime *metav1.Time `json:"scheduledTime,omitempty"`
	// InitializedTime is when the pod's init containers were done: the image pulls
	// they needed, the secrets' and artifacts' helper, restored files, and the step's
	// services started and ready.
	// +optional
	InitializedTime *metav1.Time `json:"initializedTime,omitempty"`
	// ContainerStartTime is when the step's container started: from InitializedTime,
	// pulling the step's image and creating its container.
	// +optional
	ContainerStartTime *metav1.Time `json:"containerStartTime,omitempty"`
}
