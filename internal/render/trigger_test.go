package render

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

func TestTriggeredRunNames(t *testing.T) {
	trig := &v1alpha1.PipelineTrigger{ObjectMeta: metav1.ObjectMeta{Name: "app", UID: "uid-1"}}
	long := &v1alpha1.PipelineTrigger{ObjectMeta: metav1.ObjectMeta{Name: strings.Repeat("very.long.trigger.", 10), UID: "uid-2"}}
	other := &v1alpha1.PipelineTrigger{ObjectMeta: metav1.ObjectMeta{Name: "app", UID: "uid-3"}}
	c1, c2 := strings.Repeat("a", 40), "abcdef0"+strings.Repeat("1", 33)
	slot := time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)
	names := map[string]string{
		"main c1":           TriggeredRunName(trig, "main", c1),
		"main c2":           TriggeredRunName(trig, "main", c2),
		"release/1 c1":      TriggeredRunName(trig, "release/1", c1),
		"release-1 c1":      TriggeredRunName(trig, "release-1", c1),
		"Release/1 c1":      TriggeredRunName(trig, "Release/1", c1),
		"long trigger":      TriggeredRunName(long, strings.Repeat("feature/", 30), c1),
		"recreated trigger": TriggeredRunName(other, "main", c1),
		"schedule":          ScheduledRunName(trig, "nightly", slot),
		"schedule +1m":      ScheduledRunName(trig, "nightly", slot.Add(time.Minute)),
		"schedule, zone":    ScheduledRunName(trig, "nightly", slot.In(time.FixedZone("x", 3600))),
	}
	if got := names["main c1"]; !strings.HasPrefix(got, "app-main-aaaaaaa-") {
		t.Errorf("name %q does not read <trigger>-<branch>-<commit>-<hash>", got)
	}
	if got := names["schedule"]; !strings.HasPrefix(got, "app-nightly-202612050300-") {
		t.Errorf("name %q does not read <trigger>-<schedule>-<slot>-<hash>", got)
	}
	if names["schedule"] != names["schedule, zone"] {
		t.Errorf("the same instant in another zone named differently: %q, %q", names["schedule"], names["schedule, zone"])
	}
	if again := TriggeredRunName(trig, "main", c1); again != names["main c1"] {
		t.Errorf("not deterministic: %q then %q", names["main c1"], again)
	}
	seen := map[string]string{}
	for what, n := range names {
		if what == "schedule, zone" {
			continue
		}
		if errs := validation.IsDNS1123Label(n); len(errs) > 0 || len(n) > 60 {
			t.Errorf("%s: %q is not a DNS label with room for child suffixes: %v", what, n, errs)
		}
		if prev, dup := seen[n]; dup {
			t.Errorf("%s and %s share the name %q", what, prev, n)
		}
		seen[n] = what
	}
}

func TestTriggeredRun(t *testing.T) {
	trig := &v1alpha1.PipelineTrigger{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns", UID: "uid-1"},
		Spec: v1alpha1.PipelineTriggerSpec{
			RepoURL:      "https://git.example/org/app.git",
			GitSecretRef: &v1alpha1.SecretReference{Name: "git"},
			Template: v1alpha1.PipelineRunTemplate{PipelinePath: "ci.yaml", ConcurrencyPolicy: v1alpha1.ConcurrencyReplace,
				Timeout: &metav1.Duration{Duration: 30 * time.Minute}, ServiceAccountName: "builder"},
		},
	}
	commit := strings.Repeat("c", 40)
	run := TriggeredRun(trig, "app-x", "release/1", commit, "nightly")
	s := run.Spec
	if s.RepoURL != trig.Spec.RepoURL || s.Branch != "release/1" || s.Revision != commit || s.PipelinePath != "ci.yaml" ||
		s.ConcurrencyPolicy != v1alpha1.ConcurrencyReplace || s.Timeout.Duration != 30*time.Minute ||
		s.ServiceAccountName != "builder" || s.GitSecretRef.Name != "git" {
		t.Errorf("spec not from the trigger and template: %+v", s)
	}
	if s.GitSecretRef == trig.Spec.GitSecretRef {
		t.Error("the run shares the trigger's Secret reference instead of a copy")
	}
	want := map[string]string{v1alpha1.LabelTrigger: "app", v1alpha1.LabelTriggerUID: "uid-1",
		v1alpha1.LabelTriggerBranch: "release-1", v1alpha1.LabelCommit: commit, v1alpha1.LabelSchedule: "nightly"}
	for k, v := range want {
		if run.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, run.Labels[k], v)
		}
	}
	ref := metav1.GetControllerOf(run)
	if ref == nil || ref.UID != "uid-1" || ref.Kind != "PipelineTrigger" || run.Namespace != "ns" {
		t.Errorf("owner %+v in %q: want the trigger as controller", ref, run.Namespace)
	}
	if _, ok := TriggeredRun(trig, "app-y", "main", commit, "").Labels[v1alpha1.LabelSchedule]; ok {
		t.Error("a run of a new head carries a schedule label")
	}
}
