package runstate

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

func TestActive(t *testing.T) {
	const S, R, P, F, K = v1alpha1.StepSucceeded, v1alpha1.StepRunning, v1alpha1.StepPending, v1alpha1.StepFailed, v1alpha1.StepSkipped
	cases := []struct {
		name   string
		phases []v1alpha1.StepPhase
		active []int
	}{
		{"nothing ran yet", []v1alpha1.StepPhase{P, P, P}, nil},
		{"the first runs", []v1alpha1.StepPhase{R, P, P}, []int{0}},
		{"two run", []v1alpha1.StepPhase{S, R, R}, []int{1, 2}},
		{"ended steps are not active", []v1alpha1.StepPhase{S, F, K}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := steps(tc.phases...)
			if diff := cmp.Diff(tc.active, Active(st)); diff != "" {
				t.Errorf("Active (-want +got):\n%s", diff)
			}
		})
	}
}
