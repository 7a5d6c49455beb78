package runstate

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

func TestObserve(t *testing.T) {
	for _, tc := range []struct {
		name          string
		gen, observed int64
		condGen       []int64
		changed       bool
	}{
		{"current", 2, 2, []int64{2, 2}, false},
		{"a finished run edited", 3, 2, []int64{2, 2}, true},
		{"only a condition behind", 2, 2, []int64{2, 1}, true},
		{"no conditions yet", 1, 0, nil, true},
	} {
		run := &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Generation: tc.gen}}
		run.Status.ObservedGeneration = tc.observed
		for i, g := range tc.condGen {
			run.Status.Conditions = append(run.Status.Conditions, metav1.Condition{Type: string(rune('A' + i)), ObservedGeneration: g})
		}
		if got := Observe(run); got != tc.changed {
			t.Errorf("%s: Observe = %v, want %v", tc.name, got, tc.changed)
		}
		if run.Status.ObservedGeneration != tc.gen {
			t.Errorf("%s: observedGeneration %d, want %d", tc.name, run.Status.ObservedGeneration, tc.gen)
		}
		for _, c := range run.Status.Conditions {
			if c.ObservedGeneration != tc.gen {
				t.Errorf("%s: condition %s observedGeneration %d, want %d", tc.name, c.Type, c.ObservedGeneration, tc.gen)
			}
		}
	}
}
