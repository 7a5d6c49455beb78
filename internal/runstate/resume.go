package runstate

import (
	"fmt"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// ResumePlan says which steps a run that resumes old may reuse: a step of the graph
// that succeeded in old, unless from names a step that it is or comes after (through
// its dependencies). Every other step runs again: one that failed, timed out, was
// cancelled or skipped, what depends on those, and every finally step. old is the
// resumed run's steps and g the graph of the same definition (the same digest), so
// step i is the same step in both. It fails when from names no step of the graph, or
// when old's steps do not match g.
func ResumePlan(old []v1alpha1.StepStatus, g Graph, from string) ([]bool, error) {
	if len(old) != len(g.Steps) {
		return nil, fmt.Errorf("the resumed run has %d steps and its definition %d", len(old), len(g.Steps))
	}
	rerun := make([]bool, len(old))
	if from != "" {
		at := -1
		for i := range old {
			if old[i].Name == from {
				at = i
			}
		}
		if at < 0 || g.Steps[at].Finally {
			return nil, fmt.Errorf("--from %q: the resumed run has no such step in its graph", from)
		}
		rerun[at] = true
	}
	// Steps come after what they depend on in the file's order only by convention, so
	// propagate until nothing changes (at most one round per step).
	for changed := true; changed; {
		changed = false
		for i, n := range g.Steps {
			if rerun[i] {
				continue
			}
			for _, d := range n.DependsOn {
				if rerun[d] {
					rerun[i], changed = true, true
					break
				}
			}
		}
	}
	reuse := make([]bool, len(old))
	for i, s := range old {
		reuse[i] = !g.Steps[i].Finally && !rerun[i] && s.Phase == v1alpha1.StepSucceeded
	}
	return reuse, nil
}
