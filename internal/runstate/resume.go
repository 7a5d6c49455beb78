package runstate

import (
	"fmt"
	"slices"

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

// ResumeRefusal says why run may not resume old, or "": old must have ended without
// succeeding, and have built the same repository, commit and pipeline file (the same
// digest) with the same workspace access modes.
func ResumeRefusal(old, run *v1alpha1.PipelineRun) string {
	name := old.Name
	switch {
	case old.UID == run.UID:
		return "a run cannot resume itself"
	case !old.DeletionTimestamp.IsZero():
		return fmt.Sprintf("run %q is being deleted", name)
	case !old.Status.Phase.IsFinished():
		return fmt.Sprintf("run %q has not ended", name)
	case old.Status.Phase == v1alpha1.PhaseSucceeded:
		return fmt.Sprintf("run %q succeeded: there is nothing to resume (flowci rerun %s runs it again)", name, name)
	case old.Spec.RepoURL != run.Spec.RepoURL || old.Status.Commit != run.Status.Commit:
		return fmt.Sprintf("run %q built %s at %s, this run %s at %s: a resume builds the same commit (spec.revision)",
			name, old.Spec.RepoURL, old.Status.ShortCommit, run.Spec.RepoURL, run.Status.ShortCommit)
	case old.Status.DefinitionDigest != run.Status.DefinitionDigest:
		return fmt.Sprintf("run %q ran the pipeline file %s, this run read %s: a resume runs the same file (spec.pipelinePath)",
			name, old.Status.DefinitionDigest, run.Status.DefinitionDigest)
	case !slices.Equal(old.Spec.Workspace.AccessModes, run.Spec.Workspace.AccessModes):
		return fmt.Sprintf("run %q's workspace has the access modes %v, this run asks for %v", name, old.Spec.Workspace.AccessModes, run.Spec.Workspace.AccessModes)
	}
	return ""
}

// MarkReused ends the steps a resume reuses (ResumePlan): Skipped, reason Reused.
// Their dependents may start (satisfied).
func MarkReused(run *v1alpha1.PipelineRun, reuse []bool, from string) {
	for i := range run.Status.Steps {
		if i < len(reuse) && reuse[i] && run.Status.Steps[i].Phase == v1alpha1.StepPending {
			skip(&run.Status.Steps[i], v1alpha1.ReasonReused,
				fmt.Sprintf("reused: it succeeded in run %s, whose workspace this run took over", from))
		}
	}
}
