package runstate

import (
	apimeta "k8s.io/apimachinery/pkg/api/meta"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// Kind is what changed about a run between two statuses.
type Kind string

// The kinds of transition, in the order Transitions lists them.
const (
	RunQueued   Kind = "RunQueued"
	RunStarted  Kind = "RunStarted"
	StepStarted Kind = "StepStarted"
	StepEnded   Kind = "StepEnded"
	RunEnded    Kind = "RunEnded"
)

// Transition is one change in a pass. Step is -1 for run transitions.
type Transition struct {
	Kind Kind
	Step int
	// Phase is the new phase: the run's for run transitions, the step's for steps.
	Phase string
	// Reason and Message are the run's Succeeded condition for RunEnded (the message
	// alone for RunQueued: what it waits for), the step's own for StepEnded.
	Reason, Message string
}

// Transitions lists what changed from before to after: computed once per pass, after
// the status write succeeded, so events (and metrics) count each change exactly once.
func Transitions(before, after *v1alpha1.PipelineRunStatus) []Transition {
	var out []Transition
	phaseChanged := before.Phase != after.Phase
	if phaseChanged && after.Phase == v1alpha1.PhaseQueued {
		t := Transition{Kind: RunQueued, Step: -1, Phase: string(after.Phase)}
		if c := apimeta.FindStatusCondition(after.Conditions, v1alpha1.ConditionSucceeded); c != nil {
			t.Message = c.Message
		}
		out = append(out, t)
	}
	if phaseChanged && after.Phase == v1alpha1.PhaseRunning {
		out = append(out, Transition{Kind: RunStarted, Step: -1, Phase: string(after.Phase)})
	}
	for i, s := range after.Steps {
		prev := v1alpha1.StepPending
		if i < len(before.Steps) {
			prev = before.Steps[i].Phase
		}
		if prev == s.Phase {
			continue
		}
		if s.Phase == v1alpha1.StepRunning {
			out = append(out, Transition{Kind: StepStarted, Step: i, Phase: string(s.Phase)})
		} else if IsTerminal(s.Phase) {
			out = append(out, Transition{Kind: StepEnded, Step: i, Phase: string(s.Phase), Reason: s.Reason, Message: s.Message})
		}
	}
	if phaseChanged && after.Phase.IsFinished() {
		t := Transition{Kind: RunEnded, Step: -1, Phase: string(after.Phase)}
		if c := apimeta.FindStatusCondition(after.Conditions, v1alpha1.ConditionSucceeded); c != nil {
			t.Reason, t.Message = c.Reason, c.Message
		}
		out = append(out, t)
	}
	return out
}
