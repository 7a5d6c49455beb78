package runstate

import (
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// TestResumePlan: a resume reuses the steps that succeeded, on every branch, and runs
// the rest again with what depends on them; --from runs a step and what depends on it
// again; a resume of a resume reuses what was reused; finally steps always run.
func TestResumePlan(t *testing.T) {
	ok, failed, skipped := v1alpha1.StepSucceeded, v1alpha1.StepFailed, v1alpha1.StepSkipped
	// a → {b, c}; b → d; c → e; {d, e} → f; finally g.
	g := Graph{Steps: []Node{{}, {DependsOn: []int{0}}, {DependsOn: []int{0}}, {DependsOn: []int{1}}, {DependsOn: []int{2}},
		{DependsOn: []int{3, 4}}, {Finally: true}}}
	names := []string{"a", "b", "c", "d", "e", "f", "g"}
	cur := make([]v1alpha1.StepStatus, len(names))
	for i, n := range names {
		cur[i] = v1alpha1.StepStatus{Name: n, Phase: v1alpha1.StepPending}
	}
	steps := func(phases ...string) []v1alpha1.StepStatus {
		out := make([]v1alpha1.StepStatus, len(phases))
		for i, p := range phases {
			st := v1alpha1.StepStatus{Name: names[i]}
			switch p {
			case "S":
				st.Phase = ok
			case "F":
				st.Phase, st.Reason = failed, v1alpha1.ReasonStepFailed
			case "FA":
				st.Phase, st.Reason = failed, v1alpha1.ReasonAllowedFailure
			case "C":
				st.Phase, st.Reason = v1alpha1.StepCancelled, v1alpha1.ReasonCancelled
			case "KU":
				st.Phase, st.Reason = skipped, v1alpha1.ReasonUpstreamFailed
			case "KW":
				st.Phase, st.Reason = skipped, v1alpha1.ReasonWhenFalse
			case "KR":
				st.Phase, st.Reason = skipped, v1alpha1.ReasonReused
			}
			out[i] = st
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
		{"a failure on one branch: the other branch is reused", steps("S", "S", "F", "S", "KU", "KU", "S"), "",
			[]bool{true, true, false, true, false, false, false}, ""},
		{"failures on both branches", steps("S", "F", "F", "KU", "KU", "KU", "F"), "",
			[]bool{true, false, false, false, false, false, false}, ""},
		{"from a step that succeeded: it and what depends on it run again", steps("S", "S", "F", "S", "KU", "KU", "S"), "b",
			[]bool{true, false, false, false, false, false, false}, ""},
		{"from the first step: everything runs again", steps("S", "S", "S", "S", "S", "F", "S"), "a",
			[]bool{false, false, false, false, false, false, false}, ""},
		{"a cancelled step and what depends on it", steps("S", "C", "S", "KU", "S", "KU", "S"), "",
			[]bool{true, false, true, false, true, false, false}, ""},
		{"an allowed failure runs again with its dependents", steps("S", "FA", "S", "S", "S", "F", "S"), "",
			[]bool{true, false, true, false, true, false, false}, ""},
		{"a resume of a resume reuses what was reused", steps("KR", "KR", "S", "S", "F", "KU", "S"), "",
			[]bool{true, true, true, true, false, false, false}, ""},
		{"a step skipped by its when runs (and skips) again, its dependents are reused", steps("S", "KW", "S", "S", "S", "F", "S"), "",
			[]bool{true, false, true, true, true, false, false}, ""},
		{"a step missing from the old run runs, with its dependents", steps("S", "S", "S", "S", "S", "F")[:5], "",
			[]bool{true, true, true, true, true, false, false}, ""},
		{"from a step that does not exist", steps("S", "S", "S", "S", "S", "F", "S"), "x", nil, `no such step`},
		{"from a finally step", steps("S", "S", "S", "S", "S", "F", "S"), "g", nil, `no such step`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ResumePlan(c.old, cur, g, c.from)
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

// TestResumeRefusal: a run resumes only a run of its namespace that ended without
// succeeding, of the same repository, commit, pipeline file and workspace modes.
func TestResumeRefusal(t *testing.T) {
	base := func() *v1alpha1.PipelineRun {
		r := &v1alpha1.PipelineRun{Spec: v1alpha1.PipelineRunSpec{RepoURL: "https://git.example/a.git"},
			Status: v1alpha1.PipelineRunStatus{Phase: v1alpha1.PhaseFailed, Commit: "c1", ShortCommit: "c1", DefinitionDigest: "sha256:d1"}}
		r.Name, r.UID = "old", "old-uid"
		return r
	}
	run := base()
	run.Name, run.UID, run.Status.Phase = "new", "new-uid", v1alpha1.PhasePending
	run.Spec.ResumeFrom = &v1alpha1.ResumeSource{Run: "old", UID: "old-uid"}
	for _, c := range []struct {
		name string
		edit func(*v1alpha1.PipelineRun)
		want string
	}{
		{"a failed run", func(*v1alpha1.PipelineRun) {}, ""},
		{"a cancelled run keeps no workspace", func(o *v1alpha1.PipelineRun) { o.Status.Phase = v1alpha1.PhaseCancelled }, "only a failed run keeps its workspace"},
		{"another branch", func(o *v1alpha1.PipelineRun) { o.Spec.Branch = "dev" }, "a resume builds the same branch"},
		{"the default access mode, named", func(o *v1alpha1.PipelineRun) {
			o.Spec.Workspace.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
		}, ""},
		{"itself", func(o *v1alpha1.PipelineRun) { o.UID = run.UID }, "cannot resume itself"},
		{"created again under the name", func(o *v1alpha1.PipelineRun) { o.UID = "other-uid" }, "deleted and created again"},
		{"running", func(o *v1alpha1.PipelineRun) { o.Status.Phase = v1alpha1.PhaseRunning }, "has not ended"},
		{"succeeded", func(o *v1alpha1.PipelineRun) { o.Status.Phase = v1alpha1.PhaseSucceeded }, "nothing to resume"},
		{"failed before its commit", func(o *v1alpha1.PipelineRun) { o.Status.Commit = "" }, "before it resolved a commit"},
		{"another commit", func(o *v1alpha1.PipelineRun) { o.Status.Commit = "c0" }, "a resume builds the same commit"},
		{"another repository", func(o *v1alpha1.PipelineRun) { o.Spec.RepoURL = "https://git.example/b.git" }, "a resume builds the same commit"},
		{"another file", func(o *v1alpha1.PipelineRun) { o.Status.DefinitionDigest = "sha256:d0" }, "a resume runs the same file"},
		{"another access mode", func(o *v1alpha1.PipelineRun) {
			o.Spec.Workspace.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
		}, "access modes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			old := base()
			c.edit(old)
			if got := ResumeRefusal(old, run); (got == "") != (c.want == "") || !strings.Contains(got, c.want) {
				t.Errorf("ResumeRefusal = %q, want %q", got, c.want)
			}
		})
	}
	unpinned := run.DeepCopy()
	unpinned.Spec.ResumeFrom.UID = ""
	if got := ResumeRefusal(base(), unpinned); got != "" {
		t.Errorf("a resume that pins no UID: %q", got)
	}
}

// TestWorkspaceRefusal: a workspace is taken over only while it exists and the resumed
// run controls it; the run that already holds it keeps it.
func TestWorkspaceRefusal(t *testing.T) {
	old := &v1alpha1.PipelineRun{}
	old.Name, old.UID = "old", "old-uid"
	claim := func(owner types.UID, deleting bool) *corev1.PersistentVolumeClaim {
		pvc := &corev1.PersistentVolumeClaim{}
		if owner != "" {
			pvc.OwnerReferences = []metav1.OwnerReference{{Kind: "PipelineRun", Name: "r-" + string(owner), UID: owner, Controller: ptr.To(true)}}
		}
		if deleting {
			pvc.DeletionTimestamp = &metav1.Time{Time: time.Now()}
		}
		return pvc
	}
	for _, c := range []struct {
		name string
		pvc  *corev1.PersistentVolumeClaim
		want string
	}{
		{"the resumed run's", claim("old-uid", false), ""},
		{"already the resume's", claim("new-uid", false), ""},
		{"gone", nil, "is gone"},
		{"being deleted", claim("old-uid", true), "is gone"},
		{"held by another resume", claim("other-uid", false), `held by PipelineRun "r-other-uid"`},
		{"held by nothing", claim("", false), "held by no run"},
	} {
		if got := WorkspaceRefusal(old, c.pvc, "new-uid"); (got == "") != (c.want == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: WorkspaceRefusal = %q, want %q", c.name, got, c.want)
		}
	}
}

// TestMarkReused: the reused steps end Skipped, reason Reused, and let their dependents
// start; the others stay pending.
func TestMarkReused(t *testing.T) {
	run := &v1alpha1.PipelineRun{Status: v1alpha1.PipelineRunStatus{Steps: []v1alpha1.StepStatus{
		{Name: "a", Phase: v1alpha1.StepPending}, {Name: "b", Phase: v1alpha1.StepPending, DependsOn: []string{"a"}}}}}
	MarkReused(run, []bool{true, false}, "old")
	a, b := run.Status.Steps[0], run.Status.Steps[1]
	if a.Phase != v1alpha1.StepSkipped || a.Reason != v1alpha1.ReasonReused || !strings.Contains(a.Message, "run old") || b.Phase != v1alpha1.StepPending {
		t.Errorf("steps %+v", run.Status.Steps)
	}
	if !satisfied(a) {
		t.Error("a reused step does not let its dependents start")
	}
	run.Status.Steps = append(run.Status.Steps, v1alpha1.StepStatus{Name: "c", Phase: v1alpha1.StepSkipped, Reason: v1alpha1.ReasonWhenFalse})
	if got := Reused(run); !reflect.DeepEqual(got, []bool{true, false, false}) {
		t.Errorf("Reused = %v: only the reused step runs no pod", got)
	}
}
