package controllers

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
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
		WithPolling(time.Second).Should(MatchError(ContainSubstring(`spec.template.secrets: you may not get every Secret it lists (deploy-token)`)))
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
		g.Expect(edit(plain, mutate)).To(MatchError(ContainSubstring(`you may not get every Secret it lists (deploy-token)`)), what)
		g.Expect(edit(reader, mutate)).To(Succeed(), what+", by someone who may read the Secret")
	}
	g.Expect(edit(reader, func(tr *civ1alpha1.PipelineTrigger) {
		tr.Spec.Template.Secrets = append(tr.Spec.Template.Secrets, civ1alpha1.TriggerSecret{Name: "other"})
	})).To(MatchError(ContainSubstring(`(deploy-token, other)`)), "one readable Secret does not lend another")
	g.Expect(edit(plain, func(tr *civ1alpha1.PipelineTrigger) { tr.Spec.Suspend = true })).To(Succeed(), "suspend needs nothing")
}
