package controllers

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
)

func installedCRD(t *testing.T, name string) apiextensionsv1.JSONSchemaProps {
	t.Helper()
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Name: name}, crd); err != nil {
		t.Fatal(err)
	}
	return *crd.Spec.Versions[0].Schema.OpenAPIV3Schema
}

// TestTriggerCRDBounds: the trigger's repoURL is validated exactly as a run's (the
// markers are repeated, so this catches drift), and its bounds are the API's constants.
func TestTriggerCRDBounds(t *testing.T) {
	run := installedCRD(t, "pipelineruns.ci.flowci.dev").Properties["spec"]
	trig := installedCRD(t, "pipelinetriggers.ci.flowci.dev").Properties["spec"]
	for _, field := range []string{"repoURL", "gitSecretRef"} {
		if diff := cmp.Diff(run.Properties[field].XValidations, trig.Properties[field].XValidations); diff != "" {
			t.Errorf("%s rules differ between PipelineRun and PipelineTrigger (-run +trigger):\n%s", field, diff)
		}
	}
	tpl := trig.Properties["template"]
	for _, field := range []string{"pipelinePath", "timeout", "serviceAccountName"} {
		if diff := cmp.Diff(run.Properties[field].XValidations, tpl.Properties[field].XValidations); diff != "" {
			t.Errorf("template.%s rules differ from the run's (-run +trigger):\n%s", field, diff)
		}
	}
	st := installedCRD(t, "pipelinetriggers.ci.flowci.dev").Properties["status"]
	if b := st.Properties["branches"]; b.MaxItems == nil || *b.MaxItems != civ1alpha1.MaxTriggerBranches {
		t.Errorf("status.branches maxItems = %v, want %d", b.MaxItems, civ1alpha1.MaxTriggerBranches)
	}
	if d := trig.Properties["interval"].Default; d == nil || string(d.Raw) != `"1m"` || civ1alpha1.DefaultTriggerInterval != time.Minute {
		t.Errorf("interval default %v, want %s", d, civ1alpha1.DefaultTriggerInterval)
	}
}

// TestTriggerCRDValidation: what kubectl apply refuses, and the defaults it fills in.
func TestTriggerCRDValidation(t *testing.T) {
	ctx := context.Background()
	ns := env.NewNamespace(t)
	cases := []struct {
		name    string
		mutate  func(*civ1alpha1.PipelineTrigger)
		wantErr string
	}{
		{"neither branches nor schedules", func(tr *civ1alpha1.PipelineTrigger) { tr.Spec.Branches = nil }, "a trigger needs branches, schedules, pull requests, or some of them"},
		{"pull requests without a forge", func(tr *civ1alpha1.PipelineTrigger) {
			tr.Spec.PullRequests = &civ1alpha1.PullRequestTrigger{Targets: []string{"main"}}
		}, "pullRequests needs report"},
		{"pull requests into no branch", func(tr *civ1alpha1.PipelineTrigger) {
			tr.Spec.PullRequests = &civ1alpha1.PullRequestTrigger{}
		}, "targets"},
		{"interval under 10s", func(tr *civ1alpha1.PipelineTrigger) { tr.Spec.Interval = &metav1.Duration{Duration: 5 * time.Second} }, "interval must be between 10s and 24h"},
		{"a token in the URL", func(tr *civ1alpha1.PipelineTrigger) { tr.Spec.RepoURL = "https://tok@git.example.com/x.git" }, "must not carry a user or token"},
		{"an option-like branch glob", func(tr *civ1alpha1.PipelineTrigger) { tr.Spec.Branches = []string{"--upload-pack=x"} }, "spec.branches[0]"},
		{"a schedule name that cannot be in a run name", func(tr *civ1alpha1.PipelineTrigger) {
			tr.Spec.Schedules = []civ1alpha1.TriggerSchedule{{Name: "Nightly!", Cron: "0 3 * * *"}}
		}, "spec.schedules[0].name"},
		{"a schedule branch that is no branch", func(tr *civ1alpha1.PipelineTrigger) {
			tr.Spec.Schedules = []civ1alpha1.TriggerSchedule{{Name: "n", Cron: "0 3 * * *", Branch: "a..b"}}
		}, "branch must be a git branch name"},
		{"a schedule every second", func(tr *civ1alpha1.PipelineTrigger) {
			tr.Spec.Schedules = []civ1alpha1.TriggerSchedule{{Name: "n", Cron: "@every 1s"}}
		}, "an @every schedule is a duration of whole minutes"},
		{"a schedule every 90 seconds", func(tr *civ1alpha1.PipelineTrigger) {
			tr.Spec.Schedules = []civ1alpha1.TriggerSchedule{{Name: "n", Cron: "@every 90s"}}
		}, "an @every schedule is a duration of whole minutes"},
		{"an @every without a duration", func(tr *civ1alpha1.PipelineTrigger) {
			tr.Spec.Schedules = []civ1alpha1.TriggerSchedule{{Name: "n", Cron: "@every "}}
		}, "an @every schedule is a duration of whole minutes"},
		{"an unknown provider", func(tr *civ1alpha1.PipelineTrigger) {
			tr.Spec.Report = &civ1alpha1.CommitStatusReport{Provider: "bitbucket", URL: "https://x", SecretRef: civ1alpha1.SecretReference{Name: "t"}}
		}, "spec.report.provider"},
		{"a report URL with a user", func(tr *civ1alpha1.PipelineTrigger) {
			tr.Spec.Report = &civ1alpha1.CommitStatusReport{Provider: "gitea", URL: "https://u:p@x", SecretRef: civ1alpha1.SecretReference{Name: "t"}}
		}, "url must be an http(s) URL without user info"},
	}
	for i, c := range cases {
		tr := validTrigger(ns, "bad-"+string(rune('a'+i)))
		c.mutate(tr)
		err := env.Client.Create(ctx, tr)
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%s: error %v, want one naming %q", c.name, err, c.wantErr)
		}
	}

	tr := validTrigger(ns, "defaults")
	tr.Spec.Schedules = []civ1alpha1.TriggerSchedule{{Name: "nightly", Cron: "0 3 * * *"}, {Name: "often", Cron: "@every 1h30m"}}
	tr.Spec.Report = &civ1alpha1.CommitStatusReport{Provider: "gitea", URL: "https://forge.example", SecretRef: civ1alpha1.SecretReference{Name: "t"}}
	if err := env.Client.Create(ctx, tr); err != nil {
		t.Fatal(err)
	}
	s := tr.Spec
	if s.Interval.Duration != time.Minute || s.OnNewBranch != civ1alpha1.NewBranchBuild || s.Template.PipelinePath != "build/flow-ci.yaml" ||
		s.Schedules[0].Branch != "main" || s.Schedules[0].StartingDeadline.Duration != time.Hour || s.Report.Context != "flow-ci/{pipeline}" {
		t.Errorf("defaults not applied: %+v", s)
	}
	// Unlike a run's, a trigger's template may change: it applies to the next runs.
	q := resource.MustParse("5Gi")
	tr.Spec.Template.Workspace.Size = &q
	tr.Spec.Template.Workspace.AccessModes = nil
	if err := env.Client.Update(ctx, tr); err != nil {
		t.Errorf("changing the template's workspace: %v", err)
	}
}

// TestSamples: the samples in config/samples are accepted as they are.
func TestSamples(t *testing.T) {
	ns := env.NewNamespace(t)
	for _, file := range []string{"ci_v1alpha1_pipelinerun.yaml", "ci_v1alpha1_pipelinerun_resume.yaml", "ci_v1alpha1_pipelinetrigger.yaml"} {
		raw, err := os.ReadFile("../config/samples/" + file)
		if err != nil {
			t.Fatal(err)
		}
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(raw, &obj.Object); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		obj.SetNamespace(ns)
		if err := env.Client.Create(context.Background(), obj); err != nil {
			t.Errorf("%s: %v", file, err)
		}
	}
}
