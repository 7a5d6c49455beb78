package forge

import (
	"testing"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

func TestStateFor(t *testing.T) {
	t.Parallel()
	cases := []struct {
		phase  v1alpha1.PipelineRunPhase
		want   State
		wantOK bool
	}{
		{v1alpha1.PhaseQueued, StatePending, true},
		{v1alpha1.PhasePending, StatePending, true},
		{v1alpha1.PhaseRunning, StateRunning, true},
		{v1alpha1.PhaseSucceeded, StateSuccess, true},
		{v1alpha1.PhaseFailed, StateFailure, true},
		{v1alpha1.PhaseCancelled, StateError, true},
		{"", "", false},
		{"Bogus", "", false},
	}
	for _, tc := range cases {
		got, ok := StateFor(tc.phase)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("StateFor(%q) = %q, %v; want %q, %v", tc.phase, got, ok, tc.want, tc.wantOK)
		}
	}
}

// Every reported state must be spelled for every forge, or Post would fail
// with "unknown state" for a phase StateFor accepts.
func TestForgeStatesComplete(t *testing.T) {
	t.Parallel()
	for _, p := range []Provider{GitHub, GitLab, Gitea} {
		for _, s := range []State{StatePending, StateRunning, StateSuccess, StateFailure, StateError} {
			if _, err := forgeState(p, s); err != nil {
				t.Errorf("forgeState(%s, %s): %v", p, s, err)
			}
		}
	}
}

func TestSameOnForge(t *testing.T) {
	for _, tc := range []struct {
		p    Provider
		a, b State
		same bool
	}{
		{GitHub, StatePending, StateRunning, true},
		{Gitea, StatePending, StateRunning, true},
		{GitLab, StatePending, StateRunning, false},
		{GitHub, StatePending, StateSuccess, false},
		{GitHub, "", StatePending, false},
		{"bitbucket", StatePending, StatePending, false},
	} {
		if got := SameOnForge(tc.p, tc.a, tc.b); got != tc.same {
			t.Errorf("SameOnForge(%s, %s, %s) = %v, want %v", tc.p, tc.a, tc.b, got, tc.same)
		}
	}
}
