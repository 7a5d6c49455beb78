package runstate

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// ResumePlan says which steps of a run that resumes old it reuses. steps are the new
// run's (the same definition: the same digest) and g their graph; old's steps are
// matched by name. A step is done in old when it succeeded, was reused there (a resume
// of a resume), or was skipped by its when. Every other step runs again (one that
// failed, timed out, was cancelled, skipped for a failure or missing from old, such as
// the operator's own step saving caches), and so does every step that depends on one
// that runs again, directly or not; from names a step to run again with the same rule.
// The reused steps are those of the graph that are done and succeeded (or were reused)
// and run not again; finally steps always run. It fails when from names no step of
// the graph.
func ResumePlan(old, steps []v1alpha1.StepStatus, g Graph, from string) ([]bool, error) {
	before := make(map[string]v1alpha1.StepStatus, len(old))
	for _, s := range old {
		before[s.Name] = s
	}
	rerun := make([]bool, len(steps))
	succeeded := make([]bool, len(steps))
	found := from == ""
	for i, s := range steps {
		o, ok := before[s.Name]
		succeeded[i] = ok && (o.Phase == v1alpha1.StepSucceeded || isReused(o))
		done := succeeded[i] || ok && o.Phase == v1alpha1.StepSkipped && o.Reason == v1alpha1.ReasonWhenFalse
		rerun[i] = !done || s.Name == from && !g.Steps[i].Finally
		found = found || s.Name == from && !g.Steps[i].Finally
	}
	if !found {
		return nil, fmt.Errorf("--from %q: the resumed run has no such step in its graph", from)
	}
	// A step may come before what it depends on in the file's order (dependsOn), so
	// propagate until nothing changes: at most one round per step.
	for changed := true; changed; {
		changed = false
		for i, n := range g.Steps {
			for _, d := range n.DependsOn {
				if rerun[d] && !rerun[i] {
					rerun[i], changed = true, true
				}
			}
		}
	}
	reuse := make([]bool, len(steps))
	for i := range steps {
		reuse[i] = !g.Steps[i].Finally && !rerun[i] && succeeded[i]
	}
	return reuse, nil
}

// NotResumable says why no run may resume old, or "": old must have failed (a run that
// succeeded has nothing to resume, a cancelled one keeps no workspace) after resolving
// its commit. ResumeRefusal, a trigger's resume request and flowci resume all ask it,
// so they refuse alike.
func NotResumable(old *v1alpha1.PipelineRun) string {
	name := old.Name
	switch {
	case !old.Status.Phase.IsFinished():
		return fmt.Sprintf("run %q has not ended", name)
	case old.Status.Phase == v1alpha1.PhaseSucceeded:
		return fmt.Sprintf("run %q succeeded: only a failed run can be resumed, and there is nothing to resume (flowci rerun %s runs it again)", name, name)
	case old.Status.Phase != v1alpha1.PhaseFailed:
		return fmt.Sprintf("run %q was %s: only a failed run keeps its workspace (spec.workspace.retainOnFailure); flowci rerun %s runs it again",
			name, strings.ToLower(string(old.Status.Phase)), name)
	case old.Status.Commit == "":
		return fmt.Sprintf("run %q failed before it resolved a commit: flowci rerun %s runs it again (with --latest when it names no revision)", name, name)
	}
	return ""
}

// ResumeRefusal says why run may not resume old, or "": old must be resumable
// (NotResumable), and have built the same repository, commit and pipeline file (the
// same digest) with the same workspace access modes.
func ResumeRefusal(old, run *v1alpha1.PipelineRun) string {
	name := old.Name
	switch {
	case old.UID == run.UID:
		return "a run cannot resume itself"
	case run.Spec.ResumeFrom != nil && run.Spec.ResumeFrom.UID != "" && run.Spec.ResumeFrom.UID != string(old.UID):
		return fmt.Sprintf("run %q is not the run this one resumes (spec.resumeFrom.uid %s): it was deleted and created again", name, run.Spec.ResumeFrom.UID)
	case !old.DeletionTimestamp.IsZero():
		return fmt.Sprintf("run %q is being deleted", name)
	}
	if why := NotResumable(old); why != "" {
		return why
	}
	switch {
	case old.Spec.Branch != run.Spec.Branch:
		return fmt.Sprintf("run %q built branch %q, this run %q: a resume builds the same branch", name, old.Spec.Branch, run.Spec.Branch)
	case old.Spec.RepoURL != run.Spec.RepoURL || old.Status.Commit != run.Status.Commit:
		return fmt.Sprintf("run %q built %s at %s, this run %s at %s: a resume builds the same commit (spec.revision)",
			name, old.Spec.RepoURL, old.Status.ShortCommit, run.Spec.RepoURL, run.Status.ShortCommit)
	case old.Status.DefinitionDigest != run.Status.DefinitionDigest:
		return fmt.Sprintf("run %q ran the pipeline file %s, this run read %s: a resume runs the same file (spec.pipelinePath)",
			name, old.Status.DefinitionDigest, run.Status.DefinitionDigest)
	case !slices.Equal(accessModes(old), accessModes(run)):
		return fmt.Sprintf("run %q's workspace has the access modes %v, this run asks for %v", name, old.Spec.Workspace.AccessModes, run.Spec.Workspace.AccessModes)
	}
	return ""
}

// Reused says, per step, whether a resume reuses it (MarkReused): such a step runs no
// pod, so it reserves no room on the node (render.PeakRequests).
func Reused(run *v1alpha1.PipelineRun) []bool {
	out := make([]bool, len(run.Status.Steps))
	for i, s := range run.Status.Steps {
		out[i] = isReused(s)
	}
	return out
}

func isReused(s v1alpha1.StepStatus) bool {
	return s.Phase == v1alpha1.StepSkipped && s.Reason == v1alpha1.ReasonReused
}

// WorkspaceRefusal says why the claim pvc (nil when it is gone) of old's workspace
// cannot be taken over by the run whose UID is taker, or "": it must exist, not be
// being deleted, and be controlled by old, or already by taker. So one run holds a
// workspace at a time.
func WorkspaceRefusal(old *v1alpha1.PipelineRun, pvc *corev1.PersistentVolumeClaim, taker types.UID) string {
	if pvc == nil || !pvc.DeletionTimestamp.IsZero() {
		return fmt.Sprintf("the workspace of run %q is gone (a failed run keeps it only with spec.workspace.retainOnFailure, for that long): "+
			"flowci rerun %s runs every step again", old.Name, old.Name)
	}
	switch owner := metav1.GetControllerOf(pvc); {
	case owner != nil && (owner.UID == old.UID || owner.UID == taker):
		return ""
	case owner == nil:
		return fmt.Sprintf("the workspace of run %q is held by no run: one run holds a workspace at a time", old.Name)
	default:
		return fmt.Sprintf("the workspace of run %q is held by %s %q: one run holds a workspace at a time", old.Name, owner.Kind, owner.Name)
	}
}

// accessModes are the run's workspace access modes, ReadWriteOnce when it names none
// (render.RenderWorkspace's default).
func accessModes(run *v1alpha1.PipelineRun) []corev1.PersistentVolumeAccessMode {
	if m := run.Spec.Workspace.AccessModes; len(m) > 0 {
		return m
	}
	return []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
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
