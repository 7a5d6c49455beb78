package runstate

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

func TestReadyAndActive(t *testing.T) {
	const S, R, P, F, K = v1alpha1.StepSucceeded, v1alpha1.StepRunning, v1alpha1.StepPending, v1alpha1.StepFailed, v1alpha1.StepSkipped
	cases := []struct {
		name          string
		phases        []v1alpha1.StepPhase
		ready, active []int
	}{
		{"nothing ran yet", []v1alpha1.StepPhase{P, P, P}, []int{0}, nil},
		{"the first runs", []v1alpha1.StepPhase{R, P, P}, nil, []int{0}},
		{"the first succeeded", []v1alpha1.StepPhase{S, P, P}, []int{1}, nil},
		{"the second runs", []v1alpha1.StepPhase{S, R, P}, nil, []int{1}},
		{"a failure stops the sequence", []v1alpha1.StepPhase{S, F, P}, nil, nil},
		{"skipped steps do not run", []v1alpha1.StepPhase{S, F, K}, nil, nil},
		{"all succeeded", []v1alpha1.StepPhase{S, S, S}, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := steps(tc.phases...)
			if diff := cmp.Diff(tc.ready, Ready(st)); diff != "" {
				t.Errorf("Ready (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.active, Active(st)); diff != "" {
				t.Errorf("Active (-want +got):\n%s", diff)
			}
		})
	}
}
