package controllers

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
)

// TestTriggerSecretsPolicy: a trigger's template.secrets needs get on each Secret, on
// creation and on every edit of the spec, including an edit that only widens a Secret's
// branches or events (a deploy token limited to main, opened to every branch).
func TestTriggerSecretsPolicy(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := env.NewNamespace(t)
	installPolicy(t, "pipelinetrigger_references.yaml")
	plain := creator(t, ns, "tsec-plain")
	reader := creator(t, ns, "tsec-reader", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"},
		ResourceNames: []string{"deploy-token"}, Verbs: []string{"get"}})
	deploy := func(tr *civ1alpha1.PipelineTrigger) *civ1alpha1.PipelineTrigger {
		tr.Spec.Template.Secrets = []civ1alpha1.TriggerSecret{{Name: "deploy-token", Branches: []string{"main"},
			Events: []civ1alpha1.Event{civ1alpha1.EventPush}}}
		return tr
	}
	g.Eventually(func() error { return plain.Create(ctx, deploy(validTrigger(ns, "ts1"))) }).WithTimeout(30 * time.Second).
		WithPolling(time.Second).Should(MatchError(ContainSubstring(`spec.template.secrets[0]: you may not get Secret "deploy-token"`)))
	owned := deploy(validTrigger(ns, "ts2"))
	g.Expect(reader.Create(ctx, owned)).To(Succeed())

	edit := func(c client.Client, mutate func(*civ1alpha1.PipelineTrigger)) error {
		cur := &civ1alpha1.PipelineTrigger{}
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(owned), cur)).To(Succeed())
		mutate(cur)
		return c.Update(ctx, cur)
	}
	for what, mutate := range map[string]func(*civ1alpha1.PipelineTrigger){
		"every branch":   func(tr *civ1alpha1.PipelineTrigger) { tr.Spec.Template.Secrets[0].Branches = nil },
		"every event":    func(tr *civ1alpha1.PipelineTrigger) { tr.Spec.Template.Secrets[0].Events = nil },
		"other branches": func(tr *civ1alpha1.PipelineTrigger) { tr.Spec.Branches = []string{"*"} },
	} {
		g.Expect(edit(plain, mutate)).To(MatchError(ContainSubstring(`you may not get Secret "deploy-token"`)), what)
		g.Expect(edit(reader, mutate)).To(Succeed(), what+", by someone who may read the Secret")
	}
	g.Expect(edit(reader, func(tr *civ1alpha1.PipelineTrigger) {
		tr.Spec.Template.Secrets = append(tr.Spec.Template.Secrets, civ1alpha1.TriggerSecret{Name: "other"})
	})).To(MatchError(ContainSubstring(`spec.template.secrets[1]: you may not get Secret "other"`)), "one readable Secret does not lend another")
	g.Expect(edit(plain, func(tr *civ1alpha1.PipelineTrigger) { tr.Spec.Suspend = true })).To(Succeed(), "suspend needs nothing")
}

// TestTenSecretsFitTheCostBudget: a run may expose its ten Secrets (each a separate
// authorizer check, within the API server's cost limits), and a refused one is named by
// its index.
func TestTenSecretsFitTheCostBudget(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := env.NewNamespace(t)
	installPolicy(t, "pipelinerun_references.yaml")
	var names []string
	for i := range 10 {
		names = append(names, fmt.Sprintf("s%d", i))
	}
	reader := creator(t, ns, "ten-reader", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"},
		ResourceNames: names, Verbs: []string{"get"}})
	run := func(name string, secrets ...string) *civ1alpha1.PipelineRun {
		r := validRun(ns, name)
		for _, s := range secrets {
			r.Spec.Secrets = append(r.Spec.Secrets, civ1alpha1.RunSecret{Name: s})
		}
		return r
	}
	g.Eventually(func() error { return reader.Create(ctx, run("ten-a", names[:9]...)) }).WithTimeout(30 * time.Second).
		WithPolling(time.Second).Should(Succeed())
	g.Expect(reader.Create(ctx, run("ten-b", names...))).To(Succeed(), "ten readable Secrets")
	other := append(append([]string(nil), names[:7]...), "not-yours", "s8", "s9")
	g.Expect(reader.Create(ctx, run("ten-c", other...))).
		To(MatchError(ContainSubstring(`spec.secrets[7]: you may not get Secret "not-yours"`)))
	g.Expect(reader.Create(ctx, run("ten-d", append(names, "s10")...))).To(MatchError(ContainSubstring("must have at most 10 items")))
}

// TestTriggerLabelsStayTheOperators: removing the label that makes a run a schedule's
// (its event, for when.event) needs the operator's verb, like adding one; so does setting
// or changing a run's changes base.
func TestTriggerLabelsStayTheOperators(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := env.NewNamespace(t)
	installPolicy(t, "pipelinerun_references.yaml")
	plain := creator(t, ns, "label-plain")
	operator := creator(t, ns, "label-operator", rbacv1.PolicyRule{APIGroups: []string{civ1alpha1.GroupVersion.Group},
		Resources: []string{"pipelinetriggers"}, Verbs: []string{"trigger"}})
	run := validRun(ns, "nightly-run")
	run.Labels = map[string]string{civ1alpha1.LabelSchedule: "nightly", civ1alpha1.LabelTrigger: "t", "team": "a"}
	g.Eventually(func() error { return operator.Create(ctx, run) }).WithTimeout(30 * time.Second).WithPolling(time.Second).Should(Succeed())
	relabel := func(c client.Client, mutate func(map[string]string)) error {
		cur := &civ1alpha1.PipelineRun{}
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(run), cur)).To(Succeed())
		mutate(cur.Labels)
		return c.Update(ctx, cur)
	}
	g.Expect(relabel(plain, func(l map[string]string) { delete(l, civ1alpha1.LabelSchedule) })).
		To(MatchError(ContainSubstring("or remove those labels")), "a scheduled run made a push")
	g.Expect(relabel(plain, func(l map[string]string) { l["team"] = "b" })).To(Succeed(), "other labels are the user's")
	g.Expect(relabel(operator, func(l map[string]string) { delete(l, civ1alpha1.LabelSchedule) })).To(Succeed())

	// The base of when.changes is the operator's too: set to the run's own commit, it
	// would skip every filtered step.
	based := validRun(ns, "based")
	based.Annotations = map[string]string{civ1alpha1.AnnotationChangesBase: "0123456789012345678901234567890123456789"}
	g.Expect(plain.Create(ctx, based.DeepCopy())).To(MatchError(ContainSubstring("flowci.dev/changes-base")))
	g.Expect(operator.Create(ctx, based)).To(Succeed())
	cur := &civ1alpha1.PipelineRun{}
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(based), cur)).To(Succeed())
	cur.Annotations[civ1alpha1.AnnotationChangesBase] = "fedcba9876543210fedcba9876543210fedcba98"
	g.Expect(plain.Update(ctx, cur)).To(MatchError(ContainSubstring("flowci.dev/changes-base")))
}

// TestDefinitionsAreTheOperators: a ConfigMap owned by a run (its pinned pipeline file)
// may be written only by the operator; other ConfigMaps are anyone's.
func TestDefinitionsAreTheOperators(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := env.NewNamespace(t)
	installPolicy(t, "pipelinerun_definitions.yaml")
	cms := rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"create", "update", "get"}}
	tenant := userWith(t, ns, "cm-tenant", cms)
	operator := userWith(t, ns, "cm-operator", cms, rbacv1.PolicyRule{APIGroups: []string{civ1alpha1.GroupVersion.Group},
		Resources: []string{"pipelinetriggers"}, Verbs: []string{"trigger"}})
	owned := func(name string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, OwnerReferences: []metav1.OwnerReference{{
			APIVersion: civ1alpha1.GroupVersion.String(), Kind: "PipelineRun", Name: "victim", UID: "0e5bd1f4-0000-4000-8000-000000000001"}}},
			Data: map[string]string{civ1alpha1.DefinitionKey: "name: forged\nsteps:\n- {name: x, commands: [env]}\n"}}
	}
	g.Eventually(func() error { return tenant.Create(ctx, owned("victim-def")) }).WithTimeout(30 * time.Second).
		WithPolling(time.Second).Should(MatchError(ContainSubstring("only the operator may write a ConfigMap owned by a PipelineRun")))
	g.Expect(tenant.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mine"}})).To(Succeed())
	real := owned("real-def")
	g.Expect(operator.Create(ctx, real)).To(Succeed())
	real.Data[civ1alpha1.DefinitionKey] = "name: changed\n"
	g.Expect(tenant.Update(ctx, real)).To(MatchError(ContainSubstring("only the operator")), "changing a stored definition")
}

// TestApprovingNeedsTheApproveVerb: an approval of a fork's pull request (its
// annotation) needs the verb approve on pipelinetriggers; an editor of triggers may not
// approve, and may not change an approval to another head.
func TestApprovingNeedsTheApproveVerb(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := env.NewNamespace(t)
	installPolicy(t, "pipelinetrigger_references.yaml")
	editor := triggerEditor(t, ns, "appr-editor")
	approver := userWith(t, ns, "appr-approver", rbacv1.PolicyRule{APIGroups: []string{civ1alpha1.GroupVersion.Group},
		Resources: []string{"pipelinetriggers"}, Verbs: []string{"get", "patch", "update", "approve"}})
	tr := validTrigger(ns, "prs")
	g.Expect(editor.Create(ctx, tr)).To(Succeed())
	annotate := func(c client.Client, head string) error {
		cur := &civ1alpha1.PipelineTrigger{}
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(tr), cur)).To(Succeed())
		cur.Annotations = map[string]string{civ1alpha1.AnnotationApprovePrefix + "12": head}
		if head == "" {
			cur.Annotations = nil
		}
		return c.Update(ctx, cur)
	}
	const head, other = "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"
	// The policy takes a moment to become active: until then an approval goes through,
	// so each attempt starts from none.
	g.Eventually(func() error {
		g.Expect(annotate(env.Client, "")).To(Succeed())
		return annotate(editor, head)
	}).WithTimeout(30 * time.Second).WithPolling(time.Second).
		Should(MatchError(ContainSubstring("needs the verb approve on pipelinetriggers")))
	g.Expect(annotate(approver, head)).To(Succeed())
	g.Expect(annotate(editor, other)).To(MatchError(ContainSubstring("needs the verb approve")), "moving an approval to another head")
	g.Expect(annotate(editor, head)).To(Succeed(), "an update that leaves the approval as it is")
}

// TestTrustingAnAuthorNeedsTheApproveVerb: adding a trusted author lets their forks
// run without approval, so it needs the approve verb too, even from someone who may
// edit everything else of the trigger.
func TestTrustingAnAuthorNeedsTheApproveVerb(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := env.NewNamespace(t)
	installPolicy(t, "pipelinetrigger_references.yaml")
	forge := rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"forge"}, Verbs: []string{"get"}}
	edit := rbacv1.PolicyRule{APIGroups: []string{civ1alpha1.GroupVersion.Group}, Resources: []string{"pipelinetriggers"},
		Verbs: []string{"create", "get", "update", "patch"}}
	editor := userWith(t, ns, "trust-editor", edit, forge)
	approver := userWith(t, ns, "trust-approver", edit, forge, rbacv1.PolicyRule{APIGroups: []string{civ1alpha1.GroupVersion.Group},
		Resources: []string{"pipelinetriggers"}, Verbs: []string{"approve"}})
	tr := validTrigger(ns, "prs")
	tr.Spec.PullRequests = &civ1alpha1.PullRequestTrigger{Targets: []string{"main"}}
	tr.Spec.Report = &civ1alpha1.CommitStatusReport{Provider: "gitea", URL: "https://forge.example", SecretRef: civ1alpha1.SecretReference{Name: "forge"}}
	g.Eventually(func() error { return editor.Create(ctx, tr.DeepCopy()) }).WithTimeout(30 * time.Second).WithPolling(time.Second).Should(Succeed())
	trust := func(c client.Client, authors ...string) error {
		cur := &civ1alpha1.PipelineTrigger{}
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(tr), cur)).To(Succeed())
		cur.Spec.PullRequests.TrustedAuthors = authors
		return c.Update(ctx, cur)
	}
	g.Expect(trust(editor, "mallory")).To(MatchError(ContainSubstring("trustedAuthors")))
	g.Expect(trust(approver, "dependabot")).To(Succeed())
	g.Expect(trust(editor)).To(Succeed(), "removing trust needs no approval")
}
