package forge

import (
	"fmt"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// Provider names a forge's status API.
type Provider string

const (
	GitHub Provider = "github"
	GitLab Provider = "gitlab"
	Gitea  Provider = "gitea"
)

// State is what flow-ci reports, forge-neutral.
type State string

const (
	StatePending State = "pending"
	StateRunning State = "running"
	StateSuccess State = "success"
	StateFailure State = "failure"
	StateError   State = "error"
)

// StateFor maps a run phase to the state to report. Every phase is listed, so
// a phase added to the API reports nothing (ok=false) until it is mapped here,
// rather than showing up as a red cross on someone's commit.
func StateFor(phase v1alpha1.PipelineRunPhase) (State, bool) {
	switch phase {
	case v1alpha1.PhaseQueued, v1alpha1.PhasePending:
		return StatePending, true
	case v1alpha1.PhaseRunning:
		return StateRunning, true
	case v1alpha1.PhaseSucceeded:
		return StateSuccess, true
	case v1alpha1.PhaseFailed:
		return StateFailure, true
	case v1alpha1.PhaseCancelled:
		return StateError, true
	}
	return "", false
}

// forgeStates spells each State the way a forge's API wants it. GitHub and
// Gitea have no "running", so a running run shows as pending there; GitLab
// has no "error", and "canceled" is what a cancelled run is.
var forgeStates = map[Provider]map[State]string{
	GitHub: {StatePending: "pending", StateRunning: "pending", StateSuccess: "success", StateFailure: "failure", StateError: "error"},
	Gitea:  {StatePending: "pending", StateRunning: "pending", StateSuccess: "success", StateFailure: "failure", StateError: "error"},
	GitLab: {StatePending: "pending", StateRunning: "running", StateSuccess: "success", StateFailure: "failed", StateError: "canceled"},
}

func forgeState(p Provider, s State) (string, error) {
	states, ok := forgeStates[p]
	if !ok {
		return "", fmt.Errorf("unknown forge provider %q (want %q, %q or %q)", p, GitHub, GitLab, Gitea)
	}
	v, ok := states[s]
	if !ok {
		return "", fmt.Errorf("unknown commit status state %q", s)
	}
	return v, nil
}

// SameOnForge reports whether a and b are the same state on p's forge: GitHub and
// Gitea show pending and running alike, so a run that goes from queued to running
// posts nothing new there.
func SameOnForge(p Provider, a, b State) bool {
	sa, err := forgeState(p, a)
	if err != nil {
		return false
	}
	sb, err := forgeState(p, b)
	return err == nil && sa == sb
}
