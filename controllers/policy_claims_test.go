package controllers

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
)

// TestRunsCannotClaimATrigger: only the operator (the `trigger` verb) may make a run
// claim a PipelineTrigger, on create and on every update: an owner reference to one,
// the trigger contract's labels, or the commit status record. Anything else about a
// run stays the user's, and removing a claim (the garbage collector orphaning a run)
// needs nothing.
func TestRunsCannotClaimATrigger(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := env.NewNamespace(t)
	installPolicy(t, "pipelinerun_references.yaml")
	user := creator(t, ns, "claims-user")
	operator := creator(t, ns, "claims-operator", rbacv1.PolicyRule{APIGroups: []string{civ1alpha1.GroupVersion.Group},
		Resources: []string{"pipelinetriggers"}, Verbs: []string{"trigger"}})
	trig := validTrigger(ns, "reporting")
	g.Expect(env.Client.Create(ctx, trig)).To(Succeed())
	owner := metav1.OwnerReference{APIVersion: civ1alpha1.GroupVersion.String(), Kind: "PipelineTrigger", Name: trig.Name,
		UID: trig.UID, Controller: new(true)}
	refused := MatchError(ContainSubstring("only the operator may make a PipelineRun claim a PipelineTrigger"))

	n := 0
	run := func(mutate func(*civ1alpha1.PipelineRun)) *civ1alpha1.PipelineRun {
		n++
		r := validRun(ns, "claim-"+string(rune('a'+n)))
		mutate(r)
		return r
	}
	forged := run(func(r *civ1alpha1.PipelineRun) { r.OwnerReferences = []metav1.OwnerReference{owner} })
	// The policy takes a moment to become active; each probe has a name of its own, so
	// one admitted before that cannot collide with what follows.
	g.Eventually(func() error {
		probe := forged.DeepCopy()
		probe.Name, probe.GenerateName = "", "probe-"
		return user.Create(ctx, probe)
	}).WithTimeout(30 * time.Second).WithPolling(time.Second).Should(refused)
	other := owner
	other.APIVersion, other.UID = "ci.flowci.dev/v9", types.UID("x")
	for what, mutate := range map[string]func(*civ1alpha1.PipelineRun){
		"an owner reference of another version": func(r *civ1alpha1.PipelineRun) { r.OwnerReferences = []metav1.OwnerReference{other} },
		"the trigger UID label": func(r *civ1alpha1.PipelineRun) {
			r.Labels = map[string]string{civ1alpha1.LabelTriggerUID: string(trig.UID)}
		},
		"the trigger label": func(r *civ1alpha1.PipelineRun) { r.Labels = map[string]string{civ1alpha1.LabelTrigger: trig.Name} },
		"a schedule label":  func(r *civ1alpha1.PipelineRun) { r.Labels = map[string]string{civ1alpha1.LabelSchedule: "nightly"} },
		"a rerun label":     func(r *civ1alpha1.PipelineRun) { r.Labels = map[string]string{civ1alpha1.LabelRerunOf: "x"} },
		"a commit status record": func(r *civ1alpha1.PipelineRun) {
			r.Annotations = map[string]string{civ1alpha1.AnnotationCommitStatus: `{"context":"c","state":"success"}`}
		},
	} {
		g.Expect(user.Create(ctx, run(mutate))).To(refused, what)
	}
	g.Expect(operator.Create(ctx, forged)).To(Succeed(), "the operator creates its triggers' runs")

	// Updates: a user's own run may not start claiming; the operator's run keeps its claim.
	mine := run(func(r *civ1alpha1.PipelineRun) { r.Labels = map[string]string{"team": "a"} })
	g.Expect(user.Create(ctx, mine)).To(Succeed())
	update := func(c client.Client, r *civ1alpha1.PipelineRun, mutate func(*civ1alpha1.PipelineRun)) error {
		cur := &civ1alpha1.PipelineRun{}
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(r), cur)).To(Succeed())
		mutate(cur)
		return c.Update(ctx, cur)
	}
	g.Expect(update(user, mine, func(r *civ1alpha1.PipelineRun) { r.OwnerReferences = []metav1.OwnerReference{owner} })).To(refused)
	g.Expect(update(user, mine, func(r *civ1alpha1.PipelineRun) { r.Labels[civ1alpha1.LabelTriggerUID] = string(trig.UID) })).To(refused)
	g.Expect(update(user, mine, func(r *civ1alpha1.PipelineRun) { r.Labels["team"] = "b" })).To(Succeed(), "a label of the user's own")
	g.Expect(update(user, forged, func(r *civ1alpha1.PipelineRun) { r.Spec.Cancel = true })).To(Succeed(), "cancelling a triggered run")
	g.Expect(update(user, forged, func(r *civ1alpha1.PipelineRun) {
		r.Annotations = map[string]string{civ1alpha1.AnnotationCommitStatus: `{"context":"c","state":"success"}`}
	})).To(refused, "forging what was posted, so the real result never is")
	g.Expect(update(user, forged, func(r *civ1alpha1.PipelineRun) { r.OwnerReferences = nil })).To(Succeed(), "orphaning")
	g.Expect(update(operator, forged, func(r *civ1alpha1.PipelineRun) {
		r.Annotations = map[string]string{civ1alpha1.AnnotationCommitStatus: `{"context":"c","state":"pending"}`}
	})).To(Succeed(), "the reporter records what it posted")
}
