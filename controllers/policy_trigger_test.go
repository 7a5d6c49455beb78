package controllers

import (
	"context"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
)

func validTrigger(ns, name string) *civ1alpha1.PipelineTrigger {
	return &civ1alpha1.PipelineTrigger{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       civ1alpha1.PipelineTriggerSpec{RepoURL: "https://git.example.com/org/repo.git", Branches: []string{"main"}},
	}
}

// TestTriggerAdmissionPolicy: a trigger's author may use only the Secrets and
// ServiceAccounts they could use themselves. While a trigger names any, every edit of
// its spec needs all the rights its creation needed, except suspend and the history
// limits; a poke needs nothing; a rerun request needs run create and those rights, and a
// resume request pod create too. A trigger that names no credentials may be edited by
// anyone who may edit triggers. The operator, which creates the runs, passes the run
// policy through its own verb.
func TestTriggerAdmissionPolicy(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := env.NewNamespace(t)
	installPolicy(t, "pipelinerun_references.yaml")
	installPolicy(t, "pipelinetrigger_references.yaml")
	plain := creator(t, ns, "trigger-plain")
	reader := creator(t, ns, "trigger-reader", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"},
		ResourceNames: []string{"creds", "forge"}, Verbs: []string{"get"}})
	podMaker := creator(t, ns, "trigger-pods", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create"}})
	admin := creator(t, ns, "trigger-admin", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"},
		ResourceNames: []string{"creds", "forge"}, Verbs: []string{"get"}},
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create"}})
	operator := creator(t, ns, "trigger-operator", rbacv1.PolicyRule{APIGroups: []string{civ1alpha1.GroupVersion.Group},
		Resources: []string{"pipelinetriggers"}, Verbs: []string{"trigger"}})
	editorOnly := triggerEditor(t, ns, "trigger-editor-only")

	withSecret := func(tr *civ1alpha1.PipelineTrigger) *civ1alpha1.PipelineTrigger {
		tr.Spec.GitSecretRef = &civ1alpha1.SecretReference{Name: "creds"}
		return tr
	}
	g.Eventually(func() error { return plain.Create(ctx, withSecret(validTrigger(ns, "p1"))) }).WithTimeout(30 * time.Second).
		WithPolling(time.Second).Should(MatchError(ContainSubstring(`you may not get Secret "creds"`)))
	owned := withSecret(validTrigger(ns, "r1"))
	g.Expect(reader.Create(ctx, owned)).To(Succeed())

	edit := func(c client.Client, tr *civ1alpha1.PipelineTrigger, mutate func(*civ1alpha1.PipelineTrigger)) error {
		cur := &civ1alpha1.PipelineTrigger{}
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(tr), cur)).To(Succeed())
		mutate(cur)
		return c.Update(ctx, cur)
	}
	refusedCreds := ContainSubstring(`you may not get Secret "creds"`)
	// What an editor without the Secret may not do to a trigger that polls with it.
	for what, mutate := range map[string]func(*civ1alpha1.PipelineTrigger){
		"other branches":        func(tr *civ1alpha1.PipelineTrigger) { tr.Spec.Branches = []string{"main", "release/*"} },
		"another repository":    func(tr *civ1alpha1.PipelineTrigger) { tr.Spec.RepoURL = "https://attacker.example/x.git" },
		"another pipeline file": func(tr *civ1alpha1.PipelineTrigger) { tr.Spec.Template.PipelinePath = "evil.yaml" },
		"a schedule": func(tr *civ1alpha1.PipelineTrigger) {
			tr.Spec.Schedules = []civ1alpha1.TriggerSchedule{{Name: "n", Cron: "@daily"}}
		},
		"another interval":   func(tr *civ1alpha1.PipelineTrigger) { tr.Spec.Interval = &metav1.Duration{Duration: time.Hour} },
		"build new branches": func(tr *civ1alpha1.PipelineTrigger) { tr.Spec.OnNewBranch = civ1alpha1.NewBranchSkip },
		"a rerun of an old build": func(tr *civ1alpha1.PipelineTrigger) {
			tr.Annotations = map[string]string{civ1alpha1.AnnotationRerun: "1 r1-main"}
		},
	} {
		g.Expect(edit(plain, owned, mutate)).To(MatchError(refusedCreds), what)
		g.Expect(edit(reader, owned, mutate)).To(Succeed(), what+", by someone who may read the Secret")
	}
	g.Expect(edit(plain, owned, func(tr *civ1alpha1.PipelineTrigger) { tr.Spec.GitSecretRef.Name = "other" })).
		To(MatchError(ContainSubstring(`you may not get Secret "other"`)))
	// A Go client's round trip writes durations and quantities anew ("1h0m0s" for the
	// stored "1h", "1Gi" for "1024Mi"): that is no edit.
	size := resource.MustParse("1024Mi")
	g.Expect(edit(reader, owned, func(tr *civ1alpha1.PipelineTrigger) {
		tr.Spec.Schedules = []civ1alpha1.TriggerSchedule{{Name: "nightly", Cron: "0 3 * * *"}}
		tr.Spec.Template.Timeout = &metav1.Duration{Duration: time.Hour}
		tr.Spec.Template.Workspace.Size = &size
	})).To(Succeed())
	g.Expect(edit(plain, owned, func(tr *civ1alpha1.PipelineTrigger) { tr.Labels = map[string]string{"team": "a"} })).
		To(Succeed(), "a round trip that changes only metadata")
	// What needs no access: a poke, suspending, pruning.
	g.Expect(edit(plain, owned, func(tr *civ1alpha1.PipelineTrigger) {
		tr.Annotations = map[string]string{civ1alpha1.AnnotationRequestedAt: "now"}
	})).To(Succeed(), "a poke")
	g.Expect(edit(plain, owned, func(tr *civ1alpha1.PipelineTrigger) { tr.Spec.Suspend = true })).To(Succeed(), "suspend")
	g.Expect(edit(plain, owned, func(tr *civ1alpha1.PipelineTrigger) {
		tr.Spec.SuccessfulHistoryLimit, tr.Spec.FailedHistoryLimit = new(int32(1)), new(int32(2))
	})).To(Succeed(), "history limits")
	// A rerun request needs the right to create runs, whatever the trigger names.
	plainTrigger := validTrigger(ns, "open")
	g.Expect(plain.Create(ctx, plainTrigger)).To(Succeed())
	g.Expect(edit(plain, plainTrigger, func(tr *civ1alpha1.PipelineTrigger) { tr.Spec.Branches = []string{"dev"} })).
		To(Succeed(), "a trigger that names no credentials is anyone's to edit")
	rerun := func(tr *civ1alpha1.PipelineTrigger) {
		tr.Annotations = map[string]string{civ1alpha1.AnnotationRerun: "2 open-main"}
	}
	g.Expect(edit(editorOnly, plainTrigger, rerun)).To(MatchError(ContainSubstring("may not create PipelineRuns")))
	g.Expect(edit(plain, plainTrigger, rerun)).To(Succeed())
	// A resume request also needs the right to create pods, as spec.resumeFrom does.
	ask := func(value string) func(*civ1alpha1.PipelineTrigger) {
		return func(tr *civ1alpha1.PipelineTrigger) {
			tr.Annotations = map[string]string{civ1alpha1.AnnotationRerun: value}
		}
	}
	for _, value := range []string{"3 open-main resume", "4 open-main resume Unit tests", " 5\topen-main   resume"} {
		g.Expect(edit(plain, plainTrigger, ask(value))).To(MatchError(ContainSubstring("may not create pods")), value)
	}
	g.Expect(edit(podMaker, plainTrigger, ask("6 open-main resume test"))).To(Succeed())
	g.Expect(edit(plain, plainTrigger, ask("7 app-main-resume-1a2b"))).To(Succeed(), "a rerun of a run whose name holds resume")

	withReport := func(tr *civ1alpha1.PipelineTrigger) *civ1alpha1.PipelineTrigger {
		tr.Spec.Report = &civ1alpha1.CommitStatusReport{Provider: "gitea", URL: "https://forge.example", SecretRef: civ1alpha1.SecretReference{Name: "forge"}}
		return tr
	}
	g.Expect(plain.Create(ctx, withReport(validTrigger(ns, "p2")))).To(MatchError(ContainSubstring(`spec.report.secretRef: you may not get Secret "forge"`)))
	reported := withReport(validTrigger(ns, "r2"))
	g.Expect(reader.Create(ctx, reported)).To(Succeed())
	g.Expect(edit(plain, reported, func(tr *civ1alpha1.PipelineTrigger) { tr.Spec.Report.URL = "https://attacker.example" })).
		To(MatchError(ContainSubstring(`you may not get Secret "forge"`)), "sending the token elsewhere")
	g.Expect(edit(plain, reported, func(tr *civ1alpha1.PipelineTrigger) { tr.Spec.Branches = []string{"dev"} })).
		To(MatchError(ContainSubstring(`you may not get Secret "forge"`)), "reporting on other branches with the token")

	withSA := func(tr *civ1alpha1.PipelineTrigger) *civ1alpha1.PipelineTrigger {
		tr.Spec.Template.ServiceAccountName = "deployer"
		return tr
	}
	g.Expect(plain.Create(ctx, withSA(validTrigger(ns, "p3")))).To(MatchError(ContainSubstring("may not make this trigger run steps as ServiceAccount")))
	deployer := withSA(validTrigger(ns, "r3"))
	g.Expect(podMaker.Create(ctx, deployer)).To(Succeed())
	g.Expect(edit(reader, deployer, func(tr *civ1alpha1.PipelineTrigger) { tr.Spec.Branches = []string{"attacker-branch"} })).
		To(MatchError(ContainSubstring("may not make this trigger run steps as ServiceAccount")), "running other code as the ServiceAccount")
	g.Expect(edit(podMaker, deployer, func(tr *civ1alpha1.PipelineTrigger) { tr.Spec.Branches = []string{"release"} })).To(Succeed())
	everything := withReport(withSA(withSecret(validTrigger(ns, "r4"))))
	g.Expect(admin.Create(ctx, everything)).To(Succeed())
	g.Expect(edit(podMaker, everything, func(tr *civ1alpha1.PipelineTrigger) { tr.Spec.Branches = []string{"x"} })).
		To(MatchError(refusedCreds), "every right of the creation, not one of them")

	// The operator creates a trigger's runs with the trigger's ServiceAccount.
	run := validRun(ns, "from-trigger")
	run.Spec.ServiceAccountName = "deployer"
	g.Expect(plain.Create(ctx, run.DeepCopy())).To(MatchError(ContainSubstring("may not run steps as ServiceAccount")))
	g.Expect(operator.Create(ctx, run)).To(Succeed())
}

// triggerEditor is a user who may edit triggers and nothing else.
func triggerEditor(t *testing.T, ns, name string) client.Client {
	t.Helper()
	return userWith(t, ns, name, rbacv1.PolicyRule{APIGroups: []string{civ1alpha1.GroupVersion.Group},
		Resources: []string{"pipelinetriggers"}, Verbs: []string{"create", "get", "update", "patch"}})
}

// TestTriggerPolicyComparesEverySpecField: the policy compares every field of
// PipelineTriggerSpec (and of its schedules, template, workspace and report) but the ones
// that only stop or prune, so a field added to the API is checked from the day it exists.
func TestTriggerPolicyComparesEverySpecField(t *testing.T) {
	raw, err := os.ReadFile("../config/policy/pipelinetrigger_references.yaml")
	if err != nil {
		t.Fatal(err)
	}
	policy := string(raw)
	start := strings.Index(policy, "- name: schedulesEdited")
	end := strings.Index(policy, "- name: rerunValue")
	if start < 0 || end < start {
		t.Fatal("the policy has no comparison variables before `rerunValue`")
	}
	compared := policy[start:end]
	exempt := map[string]bool{"suspend": true, "successfulHistoryLimit": true, "failedHistoryLimit": true}
	for _, tc := range []struct {
		typ    reflect.Type
		prefix []string // how the policy names a field of the type
	}{
		{reflect.TypeOf(civ1alpha1.PipelineTriggerSpec{}), []string{"object.spec.", "object.spec.?"}},
		{reflect.TypeOf(civ1alpha1.TriggerSchedule{}), []string{"o.", "o.?"}},
		{reflect.TypeOf(civ1alpha1.PipelineRunTemplate{}), []string{"template.?"}},
		{reflect.TypeOf(civ1alpha1.WorkspaceSpec{}), []string{"workspace.?"}},
		{reflect.TypeOf(civ1alpha1.CommitStatusReport{}), []string{"report.?"}},
	} {
		for i := range tc.typ.NumField() {
			name := strings.Split(tc.typ.Field(i).Tag.Get("json"), ",")[0]
			seen := false
			for _, p := range tc.prefix {
				seen = seen || regexp.MustCompile(regexp.QuoteMeta(p+name)+`\b`).MatchString(compared)
			}
			if exempt[name] && seen {
				t.Errorf("%s.%s only stops or prunes, yet an edit of it needs the trigger's rights", tc.typ.Name(), name)
			}
			if !exempt[name] && !seen {
				t.Errorf("%s.%s is not compared by the policy: an edit of it would need no rights", tc.typ.Name(), name)
			}
		}
	}
}
