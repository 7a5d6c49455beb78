package runstate

import (
	"reflect"
	"strings"
	"testing"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// TestResumePlan: a resume reuses the steps that succeeded, on every branch, and runs
// the rest again with what comes after them; --from runs a step and everything after
// it again; finally steps always run.
func TestResumePlan(t *testing.T) {
	ok, failed, skipped := v1alpha1.StepSucceeded, v1alpha1.StepFailed, v1alpha1.StepSkipped
	// a → {b, c}; b → d; c → e; {d, e} → f; finally g.
	g := Graph{Steps: []Node{{}, {DependsOn: []int{0}}, {DependsOn: []int{0}}, {DependsOn: []int{1}}, {DependsOn: []int{2}},
		{DependsOn: []int{3, 4}}, {Finally: true}}}
	names := []string{"a", "b", "c", "d", "e", "f", "g"}
	steps := func(phases ...v1alpha1.StepPhase) []v1alpha1.StepStatus {
		out := make([]v1alpha1.StepStatus, len(phases))
		for i, p := range phases {
			out[i] = v1alpha1.StepStatus{Name: names[i], Phase: p}
		}
		return out
	}
	for _, c := range []struct {
		name  string
		old   []v1alpha1.StepStatus
		from  string
		reuse []bool
		err   string
	}{
		{"a failure on one branch: the other branch is reused", steps(ok, ok, failed, ok, skipped, skipped, ok), "",
			[]bool{true, true, false, true, false, false, false}, ""},
		{"failures on both branches", steps(ok, failed, failed, skipped, skipped, skipped, failed), "",
			[]bool{true, false, false, false, false, false, false}, ""},
		{"from a step that succeeded: it and what follows run again", steps(ok, ok, failed, ok, skipped, skipped, ok), "b",
			[]bool{true, false, false, false, false, false, false}, ""},
		{"from the first step: everything runs again", steps(ok, ok, ok, ok, ok, failed, ok), "a",
			[]bool{false, false, false, false, false, false, false}, ""},
		{"a cancelled run", steps(ok, v1alpha1.StepCancelled, ok, skipped, ok, skipped, ok), "",
			[]bool{true, false, true, false, true, false, false}, ""},
		{"from a step that does not exist", steps(ok, ok, ok, ok, ok, failed, ok), "x", nil, `no such step`},
		{"from a finally step", steps(ok, ok, ok, ok, ok, failed, ok), "g", nil, `no such step`},
		{"another definition", steps(ok, ok), "", nil, "has 2 steps and its definition 7"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ResumePlan(c.old, g, c.from)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.reuse) {
				t.Errorf("ResumePlan = %v, %v; want %v", got, err, c.reuse)
			}
		})
	}
}
