package v1alpha1

// ArtifactsReportPrefix starts the last line of the termination message of a step that
// kept artifacts: the step's wrapper (cmd/flowci-mask) writes what the archive stored
// and refused there as JSON, and the operator copies it into the step's status. The
// step's own program can write that file too, so the figures are the step's report;
// the archive's record of the run is the authority.
const ArtifactsReportPrefix = "flowci-artifacts: "

// Bounds of StepArtifacts: what any step can have kept (the archive's own limits are
// lower), so that sums of forged reports never overflow.
const (
	MaxArtifactRefusals = 5
	maxArtifactRefusal  = 512
	MaxArtifactCount    = 1 << 20
	MaxArtifactBytes    = 1 << 50
)

// StepArtifacts is what a step kept in the archive, as its wrapper reported it.
type StepArtifacts struct {
	// Count and Bytes are the files the archive stored and their size.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Count int32 `json:"count,omitempty"`
	// +optional
	// +kubebuilder:validation:Minimum=0
	Bytes int64 `json:"bytes,omitempty"`
	// Refused lists files not kept, each with why (a limit, a symlink out of the
	// workspace); the step's log lists them all.
	// +optional
	// +kubebuilder:validation:MaxItems=5
	// +kubebuilder:validation:items:MaxLength=512
	// +listType=atomic
	Refused []string `json:"refused,omitempty"`
	// Error says why nothing was kept (no archive, the archive could not be reached).
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Error string `json:"error,omitempty"`
}

// ArtifactTotals sums what the run's steps kept; the archive lists the files
// (flowci artifacts ls).
type ArtifactTotals struct {
	// +optional
	// +kubebuilder:validation:Minimum=0
	Count int32 `json:"count,omitempty"`
	// +optional
	// +kubebuilder:validation:Minimum=0
	Bytes int64 `json:"bytes,omitempty"`
}

// Clamp bounds a report read from a step's termination message to what status holds.
func (a *StepArtifacts) Clamp() {
	a.Count, a.Bytes = min(max(a.Count, 0), MaxArtifactCount), min(max(a.Bytes, 0), MaxArtifactBytes)
	if len(a.Refused) > MaxArtifactRefusals {
		a.Refused = a.Refused[:MaxArtifactRefusals]
	}
	for i, r := range a.Refused {
		if len(r) > maxArtifactRefusal {
			a.Refused[i] = r[:maxArtifactRefusal]
		}
	}
	if len(a.Error) > maxArtifactRefusal {
		a.Error = a.Error[:maxArtifactRefusal]
	}
}
