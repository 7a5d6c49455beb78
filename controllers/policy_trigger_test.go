package controllers

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
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
// ServiceAccounts they could use themselves, at creation and when they change what the
// trigger uses or where its Secrets go; an edit that touches neither needs no access.
// The operator, which creates the runs, passes the run policy through its own verb.
func TestTriggerAdmissionPolicy(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	installPolicy(t, "pipelinerun_references.yaml")
	installPolicy(t, "pipelinetrigger_references.yaml")
	plain := creator(t, ns, "trigger-plain")
	reader := creator(t, ns, "trigger-reader", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"},
		ResourceNames: []string{"creds", "forge"}, Verbs: []string{"get"}})
	podMaker := creator(t, ns, "trigger-pods", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create"}})
	operator := creator(t, ns, "trigger-operator", rbacv1.PolicyRule{APIGroups: []string{civ1alpha1.GroupVersion.Group},
		Resources: []string{"pipelinetriggers"}, Verbs: []string{"trigger"}})

	withSecret := func(tr *civ1alpha1.PipelineTrigger) *civ1alpha1.PipelineTrigger {
		tr.Spec.GitSecretRef = &civ1alpha1.SecretReference{Name: "creds"}
		return tr
	}
	g.Eventually(func() error { return plain.Create(ctx, withSecret(validTrigger(ns, "p1"))) }).WithTimeout(30 * time.Second).
		WithPolling(time.Second).Should(MatchError(ContainSubstring(`you may not get Secret "creds"`)))
	owned := withSecret(validTrigger(ns, "r1"))
	g.Expect(reader.Create(ctx, owned)).To(Succeed())

	// Edits by someone without Secret access.
	edit := func(mutate func(*civ1alpha1.PipelineTrigger)) error {
		cur := &civ1alpha1.PipelineTrigger{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(owned), cur)).To(Succeed())
		mutate(cur)
		return plain.Update(ctx, cur)
	}
	g.Expect(edit(func(tr *civ1alpha1.PipelineTrigger) { tr.Spec.Branches = []string{"main", "release/*"} })).
		To(Succeed(), "an edit that keeps the Secret and the repository")
	g.Expect(edit(func(tr *civ1alpha1.PipelineTrigger) {
		tr.Annotations = map[string]string{civ1alpha1.AnnotationRequestedAt: "now"}
	})).To(Succeed(), "a poke")
	g.Expect(edit(func(tr *civ1alpha1.PipelineTrigger) { tr.Spec.RepoURL = "https://attacker.example/x.git" })).
		To(MatchError(ContainSubstring(`you may not get Secret "creds"`)), "sending the Secret to another host")
	g.Expect(edit(func(tr *civ1alpha1.PipelineTrigger) { tr.Spec.GitSecretRef.Name = "other" })).
		To(MatchError(ContainSubstring(`you may not get Secret "other"`)))

	withReport := func(tr *civ1alpha1.PipelineTrigger) *civ1alpha1.PipelineTrigger {
		tr.Spec.Report = &civ1alpha1.CommitStatusReport{Provider: "gitea", URL: "https://forge.example", SecretRef: civ1alpha1.SecretReference{Name: "forge"}}
		return tr
	}
	g.Expect(plain.Create(ctx, withReport(validTrigger(ns, "p2")))).To(MatchError(ContainSubstring(`spec.report.secretRef: you may not get Secret "forge"`)))
	reported := withReport(validTrigger(ns, "r2"))
	g.Expect(reader.Create(ctx, reported)).To(Succeed())
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(reported), reported)).To(Succeed())
	reported.Spec.Report.URL = "https://attacker.example"
	g.Expect(plain.Update(ctx, reported)).To(MatchError(ContainSubstring(`you may not get Secret "forge"`)), "sending the token elsewhere")

	withSA := func(tr *civ1alpha1.PipelineTrigger) *civ1alpha1.PipelineTrigger {
		tr.Spec.Template.ServiceAccountName = "deployer"
		return tr
	}
	g.Expect(plain.Create(ctx, withSA(validTrigger(ns, "p3")))).To(MatchError(ContainSubstring("may not run steps as ServiceAccount")))
	g.Expect(podMaker.Create(ctx, withSA(validTrigger(ns, "r3")))).To(Succeed())

	// The operator creates a trigger's runs with the trigger's ServiceAccount.
	run := validRun(ns, "from-trigger")
	run.Spec.ServiceAccountName = "deployer"
	g.Expect(plain.Create(ctx, run.DeepCopy())).To(MatchError(ContainSubstring("may not run steps as ServiceAccount")))
	g.Expect(operator.Create(ctx, run)).To(Succeed())
}
