package triggerstate

import (
	"testing"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// TestPathFilterBase: the base of a branch's path filter is its newest run that
// succeeded; a failed run does not move it, a skipped head does not either (its changes
// count with the next head), and a branch never built has none.
func TestPathFilterBase(t *testing.T) {
	st := &v1alpha1.PipelineTriggerStatus{Branches: []v1alpha1.TriggerBranchStatus{{Name: "main"}, {Name: "dev"}}}
	steps := []struct {
		do   func()
		base string
	}{
		{func() {}, ""},
		{func() { RecordRun(st, Head{"main", "a"}, "r-a") }, ""},
		{func() { RecordPhases(st, map[string]v1alpha1.PipelineRunPhase{"r-a": v1alpha1.PhaseSucceeded}) }, "a"},
		{func() { RecordRun(st, Head{"main", "b"}, "r-b") }, "a"},
		{func() { RecordPhases(st, map[string]v1alpha1.PipelineRunPhase{"r-b": v1alpha1.PhaseFailed}) }, "a"},
		{func() { RecordSkip(st, Head{"main", "c"}) }, "a"},
		{func() { RecordRun(st, Head{"main", "d"}, "r-d") }, "a"},
		{func() { RecordPhases(st, map[string]v1alpha1.PipelineRunPhase{"r-d": v1alpha1.PhaseSucceeded}) }, "d"},
	}
	for i, s := range steps {
		s.do()
		if got := ChangesBase(st.Branches, "main"); got != s.base {
			t.Errorf("step %d: base %q, want %q", i, got, s.base)
		}
	}
	if st.Branches[0].Commit != "d" {
		t.Errorf("the branch's head is %q, want d", st.Branches[0].Commit)
	}
	if got := ChangesBase(st.Branches, "dev"); got != "" {
		t.Errorf("a branch never built has base %q", got)
	}
}
