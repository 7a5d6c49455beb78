package runstate

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"errors"
	"github.com/flow-ci/flow-ci/api/v1alpha1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"time"
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

func TestConcludePass(t *testing.T) {
	now := metav1.NewTime(time.Unix(1e9, 0))
	running := func() *v1alpha1.PipelineRun {
		r := &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Generation: 2}}
		r.Status.Phase = v1alpha1.PhaseRunning
		r.Status.ObservedGeneration = 1
		return r
	}
	reconciling := func(r *v1alpha1.PipelineRun) *metav1.Condition {
		return apimeta.FindStatusCondition(r.Status.Conditions, v1alpha1.ConditionReconciling)
	}
	r := running()
	ConcludePass(r, Pass{Transient: errors.New("the API server said 500")}, now)
	if c := reconciling(r); c == nil || c.Status != metav1.ConditionTrue || c.Message != "the API server said 500" || r.Status.ObservedGeneration != 1 {
		t.Errorf("transient: %+v, observed %d", c, r.Status.ObservedGeneration)
	}
	ConcludePass(r, Pass{}, now)
	if reconciling(r) != nil || r.Status.ObservedGeneration != 2 {
		t.Errorf("a pass that succeeded: %+v, observed %d", reconciling(r), r.Status.ObservedGeneration)
	}
	r = running()
	ConcludePass(r, Pass{Ending: &Ending{Phase: v1alpha1.PhaseFailed, Reason: v1alpha1.ReasonInvalidSpec, Message: "bad"}, Transient: errors.New("x")}, now)
	if r.Status.Phase != v1alpha1.PhaseFailed || reconciling(r) != nil || r.Status.ObservedGeneration != 2 {
		t.Errorf("ended: %+v", r.Status)
	}
}
