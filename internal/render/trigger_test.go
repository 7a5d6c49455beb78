package render

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
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
		"rerun":             RerunName(trig, source("app-main-aaaaaaa-1", "main"), "r1", false),
		"rerun, latest":     RerunName(trig, source("app-main-aaaaaaa-1", "main"), "r1", true),
		"rerun, request 2":  RerunName(trig, source("app-main-aaaaaaa-1", "main"), "r2", false),
		"rerun, other run":  RerunName(trig, source("app-main-bbbbbbb-1", "main"), "r1", false),
		"rerun, long":       RerunName(long, source(strings.Repeat("x", 63), strings.Repeat("feature/", 30)), strings.Repeat("9", 32), true),
		"resume":            ResumeName(trig, source("app-main-aaaaaaa-1", "main"), "r1", ""),
		"resume from test":  ResumeName(trig, source("app-main-aaaaaaa-1", "main"), "r1", "test"),
		"resume, long":      ResumeName(long, source(strings.Repeat("x", 63), strings.Repeat("feature/", 30)), strings.Repeat("9", 32), strings.Repeat("s", 253)),
	}
	if got := names["rerun"]; !strings.HasPrefix(got, "app-main-rerun-") {
		t.Errorf("name %q does not read <trigger>-<branch>-rerun-<hash>", got)
	}
	if got := names["resume"]; !strings.HasPrefix(got, "app-main-resume-") {
		t.Errorf("name %q does not read <trigger>-<branch>-resume-<hash>", got)
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

func source(name, branch string) *v1alpha1.PipelineRun {
	return &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.PipelineRunSpec{Branch: branch}}
}

// A trigger adopts a run of its name only when it is the run it would create; the
// defaults the CRD applied, and a cancel, do not make it another run.
func TestSameTriggeredRun(t *testing.T) {
	trig := &v1alpha1.PipelineTrigger{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns", UID: "uid-1"},
		Spec:       v1alpha1.PipelineTriggerSpec{RepoURL: "https://git.example/org/app.git"},
	}
	commit := strings.Repeat("c", 40)
	want := TriggeredRun(trig, "app-x", "main", commit, "")
	defaulted := func(mut func(*v1alpha1.PipelineRun)) *v1alpha1.PipelineRun {
		r := want.DeepCopy()
		r.Spec.PipelinePath = "build/flow-ci.yaml"
		r.Spec.Timeout = &metav1.Duration{Duration: time.Hour}
		r.Spec.ConcurrencyPolicy = v1alpha1.ConcurrencyAllow
		size := resource.MustParse("1Gi")
		r.Spec.Workspace = v1alpha1.WorkspaceSpec{Size: &size, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}}
		r.Labels["team"] = "x" // labels of its own do not matter
		mut(r)
		return r
	}
	for _, tc := range []struct {
		name string
		mut  func(*v1alpha1.PipelineRun)
		same bool
	}{
		{"as the API server defaulted it", func(*v1alpha1.PipelineRun) {}, true},
		{"cancelled since", func(r *v1alpha1.PipelineRun) { r.Spec.Cancel = true }, true},
		{"another repository", func(r *v1alpha1.PipelineRun) { r.Spec.RepoURL = "https://git.example/org/other.git" }, false},
		{"another commit", func(r *v1alpha1.PipelineRun) { r.Spec.Revision = strings.Repeat("d", 40) }, false},
		{"another pipeline file", func(r *v1alpha1.PipelineRun) { r.Spec.PipelinePath = "evil.yaml" }, false},
		{"a ServiceAccount", func(r *v1alpha1.PipelineRun) { r.Spec.ServiceAccountName = "admin" }, false},
		{"a git Secret", func(r *v1alpha1.PipelineRun) { r.Spec.GitSecretRef = &v1alpha1.SecretReference{Name: "x"} }, false},
		{"another trigger's label", func(r *v1alpha1.PipelineRun) { r.Labels[v1alpha1.LabelTriggerUID] = "uid-2" }, false},
	} {
		if got := SameTriggeredRun(defaulted(tc.mut), want); got != tc.same {
			t.Errorf("%s: SameTriggeredRun = %v, want %v", tc.name, got, tc.same)
		}
	}
}

func TestRerun(t *testing.T) {
	trig := &v1alpha1.PipelineTrigger{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns", UID: "uid-1"},
		Spec: v1alpha1.PipelineTriggerSpec{RepoURL: "https://git.example/org/app.git"}}
	src := source("app-nightly-202612050300-1", "main")
	src.Labels = map[string]string{v1alpha1.LabelSchedule: "nightly"}
	commit := strings.Repeat("e", 40)
	run := Rerun(trig, "app-main-rerun-1", src, commit)
	if run.Labels[v1alpha1.LabelRerunOf] != src.Name || run.Labels[v1alpha1.LabelSchedule] != "nightly" ||
		run.Spec.Revision != commit || run.Spec.Branch != "main" || metav1.GetControllerOf(run).UID != "uid-1" {
		t.Errorf("rerun = %+v %+v", run.Labels, run.Spec)
	}
}

func TestResume(t *testing.T) {
	trig := &v1alpha1.PipelineTrigger{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns", UID: "uid-1"},
		Spec: v1alpha1.PipelineTriggerSpec{RepoURL: "https://git.example/org/app.git"}}
	for _, tc := range []struct {
		name, pull, untrusted string
	}{{"a branch's run", "", ""}, {"a fork's pull request", "7", "true"}} {
		src := source("app-main-aaaaaaa-1", "main")
		src.Labels = map[string]string{v1alpha1.LabelPullRequest: tc.pull, v1alpha1.LabelUntrusted: tc.untrusted}
		src.Status.Commit = strings.Repeat("e", 40)
		run := Resume(trig, "app-main-resume-1", src, "test")
		if run.Labels[v1alpha1.LabelRerunOf] != src.Name || run.Spec.Revision != src.Status.Commit ||
			run.Spec.ResumeFrom == nil || *run.Spec.ResumeFrom != (v1alpha1.ResumeSource{Run: src.Name, From: "test"}) ||
			metav1.GetControllerOf(run).UID != "uid-1" || run.Labels[v1alpha1.LabelUntrusted] != tc.untrusted {
			t.Errorf("%s: resume = %+v %+v", tc.name, run.Labels, run.Spec)
		}
	}
}
