package render

import (
	"slices"
	"strings"
	"testing"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/pipeline"
)

// Who saves caches, as a table: only the runs a trigger with cacheWrite starts for its
// branches and schedules; pull requests (a fork's or not), runs by hand, reruns of
// either, and runs of triggers without cacheWrite restore only.
func TestWhoSavesCaches(t *testing.T) {
	tr := &v1alpha1.PipelineTrigger{}
	tr.Name, tr.Namespace, tr.UID, tr.Spec.RepoURL = "app", "ns", "uid", "https://git.example/app.git"
	writer := tr.DeepCopy()
	writer.Spec.CacheWrite = true
	const head = "0123456789012345678901234567890123456789"
	byHand := &v1alpha1.PipelineRun{}
	forged := TriggeredRun(writer, "x", "main", head, "")
	forged.Labels[v1alpha1.LabelUntrusted] = "true"
	tests := []struct {
		name  string
		run   *v1alpha1.PipelineRun
		saves bool
	}{
		{"a push to a branch, cacheWrite", TriggeredRun(writer, "x", "main", head, ""), true},
		{"a schedule, cacheWrite", TriggeredRun(writer, "x", "main", head, "nightly"), true},
		{"a push, no cacheWrite", TriggeredRun(tr, "x", "main", head, ""), false},
		{"a pull request from the repository, cacheWrite", PullRequestRun(writer, "x", 3, "main", head, true), false},
		{"a fork's pull request, cacheWrite", PullRequestRun(writer, "x", 3, "main", head, false), false},
		{"a rerun of a fork's pull request", Rerun(writer, "y", PullRequestRun(writer, "x", 3, "main", head, false), head), false},
		{"a rerun of a push", Rerun(writer, "y", TriggeredRun(writer, "x", "main", head, ""), head), true},
		{"a run by hand", byHand, false},
		{"untrusted wins over cacheWrite", forged, false},
	}
	p := pipeline.Pipeline{Steps: []pipeline.Step{{Name: "build"}}, Caches: []pipeline.Cache{{Name: "go"}}}
	for _, tc := range tests {
		if got := v1alpha1.SavesCaches(tc.run); got != tc.saves {
			t.Errorf("%s: SavesCaches = %v, want %v (labels %v)", tc.name, got, tc.saves, tc.run.Labels)
		}
		withSave := PipelineOf(tc.run, p)
		if has := len(withSave.Finally) == 1 && withSave.Finally[0].SavesCaches; has != tc.saves {
			t.Errorf("%s: the saving step is there: %v", tc.name, has)
		}
	}
}

// The saving step runs the operator's binary in its image, never the file's, with the
// caches, the archive and a token of the archive's audience; the clone restores with the
// same; a step gets the presets' variables unless it sets them.
func TestCacheJobs(t *testing.T) {
	def, err := pipeline.Parse([]byte("name: c\ncaches: [{name: go, preset: go}]\nimage: golang:1.26\nsteps:\n- name: build\n  env: {GOCACHE: /mine}\n  commands: [go build]\n"))
	if err != nil {
		t.Fatal(err)
	}
	run := testRun()
	run.Labels = map[string]string{v1alpha1.LabelCacheWrite: "true"}
	run.Spec.ServiceAccountName = "deployer"
	p := PipelineOf(run, def.Pipeline)
	cfg := testCfg
	cfg.Archive = ArchiveConfig{URL: "https://10.0.0.9:443", CA: "pem"}
	save, err := RenderStepJob(run, &p, 1, "", cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := save.Spec.Template.Spec.Containers[0]
	if c.Image != cfg.CloneImage || !slices.Equal(c.Args, []string{"caches", "save", "--workspace", WorkspaceMount}) || len(save.Spec.Template.Spec.InitContainers) != 0 {
		t.Errorf("saving step: image %q args %q", c.Image, c.Args)
	}
	if ps := save.Spec.Template.Spec; ps.ServiceAccountName != "" || ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		t.Errorf("the saving step got the run's ServiceAccount %q", ps.ServiceAccountName)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if !strings.Contains(env["FLOWCI_CACHES"], `"dirs":["home/go/pkg/mod","home/.cache/go-build"]`) || env["FLOWCI_ARCHIVE_URL"] == "" ||
		env["FLOWCI_BRANCH"] != run.Status.Branch {
		t.Errorf("saving step env %v", env)
	}
	build, err := RenderStepJob(run, &p, 0, "", cfg)
	if err != nil {
		t.Fatal(err)
	}
	env = map[string]string{}
	for _, e := range build.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	if env["GOMODCACHE"] != HomeDir+"/go/pkg/mod" || env["GOCACHE"] != "/mine" {
		t.Errorf("step env GOMODCACHE=%q GOCACHE=%q: the preset's, and the file's own wins", env["GOMODCACHE"], env["GOCACHE"])
	}
	clone := RenderCloneJob(run, cfg, nil)
	WithCacheRestore(clone, &p, cfg)
	spec := clone.Spec.Template.Spec
	var audience string
	for _, v := range spec.Volumes {
		if v.Projected != nil {
			audience = v.Projected.Sources[0].ServiceAccountToken.Audience
		}
	}
	if audience != ArchiveAudience || spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("clone: token audience %q, automount %v", audience, spec.AutomountServiceAccountToken)
	}
}
