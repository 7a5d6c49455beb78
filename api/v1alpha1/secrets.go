package v1alpha1

// SecretReference names a Secret in the same namespace as the PipelineRun.
type SecretReference struct {
	// Name of the Secret, in the run's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="gitSecretRef.name must be a DNS subdomain: a Secret in the run's own namespace"
	Name string `json:"name"`
}

// RunSecret is a Secret a run's steps may ask for.
type RunSecret struct {
	// Name of the Secret, in the run's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="secrets[].name must be a DNS subdomain: a Secret in the run's own namespace"
	Name string `json:"name"`
}

// TriggerSecret is a Secret a trigger passes to its runs (spec.secrets), limited to the
// branches and events it names: a deploy token only for pushes to main.
type TriggerSecret struct {
	// Name of the Secret, in the trigger's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="secrets[].name must be a DNS subdomain: a Secret in the trigger's own namespace"
	Name string `json:"name"`
	// Branches are globs (path.Match) of the branches whose runs get the Secret; empty:
	// every branch. A run of a schedule counts as a run of its branch.
	// +optional
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=255
	// +listType=set
	Branches []string `json:"branches,omitempty"`
	// Events are the events whose runs get the Secret: push (a new head of a branch),
	// schedule, and pull_request (a pull request from the repository itself; a fork's
	// never gets one). Empty: push and schedule, so a Secret reaches pull requests only
	// when this says so. Branches then match the pull request's target.
	// +optional
	// +kubebuilder:validation:MaxItems=3
	// +kubebuilder:validation:items:Enum=push;schedule;pull_request
	// +listType=set
	Events []Event `json:"events,omitempty"`
}

// Event is what started a run; a step's when.event matches it.
type Event string

// The events. A run a trigger starts for a new head is a push, one a schedule starts a
// schedule (a rerun keeps the event of the run it repeats), and any other run (kubectl,
// flowci start, flowci run) is manual.
const (
	EventPush     Event = "push"
	EventSchedule Event = "schedule"
	EventManual   Event = "manual"
)

// EventOf is the event of run, from the labels only the operator may add, change or
// remove (config/policy), so a user cannot make a run pass for a trigger's push, nor a
// schedule's run for a push.
func EventOf(run *PipelineRun) Event {
	if run.Labels[LabelTriggerUID] == "" {
		return EventManual
	}
	if run.Labels[LabelSchedule] != "" {
		return EventSchedule
	}
	if run.Labels[LabelPullRequest] != "" {
		return EventPullRequest
	}
	return EventPush
}

// SecretNames are the names of the Secrets spec.secrets exposes.
func (s *PipelineRunSpec) SecretNames() []string {
	out := make([]string, len(s.Secrets))
	for i, r := range s.Secrets {
		out[i] = r.Name
	}
	return out
}
