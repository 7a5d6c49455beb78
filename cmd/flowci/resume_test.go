package main

import (
	"strings"
	"testing"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

func TestResumeSpec(t *testing.T) {
	old := func(phase v1alpha1.PipelineRunPhase, commit string) *v1alpha1.PipelineRun {
		r := &v1alpha1.PipelineRun{Spec: v1alpha1.PipelineRunSpec{RepoURL: "https://git.example/a.git", Branch: "main", Cancel: true,
			ServiceAccountName: "deployer", Secrets: []v1alpha1.RunSecret{{Name: "token"}}}}
		r.Name, r.Status.Phase, r.Status.Commit = "build-1", phase, commit
		return r
	}
	spec, err := resumeSpec(old(v1alpha1.PhaseFailed, "abc123"), "test")
	if err != nil {
		t.Fatal(err)
	}
	if spec.Revision != "abc123" || spec.Cancel || spec.ServiceAccountName != "deployer" || len(spec.Secrets) != 1 ||
		spec.ResumeFrom == nil || *spec.ResumeFrom != (v1alpha1.ResumeSource{Run: "build-1", From: "test"}) {
		t.Errorf("spec %+v", spec)
	}
	for _, c := range []struct {
		run  *v1alpha1.PipelineRun
		want string
	}{
		{old(v1alpha1.PhaseRunning, "abc"), "has not ended"},
		{old(v1alpha1.PhaseSucceeded, "abc"), "nothing to resume"},
		{old(v1alpha1.PhaseFailed, ""), "before it resolved a commit"},
	} {
		if _, err := resumeSpec(c.run, ""); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.run.Status.Phase, err, c.want)
		}
	}
}
