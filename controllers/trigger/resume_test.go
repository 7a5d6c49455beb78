package trigger

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/render"
	"github.com/flow-ci/flow-ci/internal/triggerstate"
)

// TestResumeRequest: a rerun request with "resume" makes the trigger resume its failed
// run as a run of its own (spec.resumeFrom, the same commit, pinned by UID), which
// reports its commit status like the run it continues. A resume that would only fail
// once created, and post a failure over the commit's status, is refused without a run:
// of a run that has not ended or succeeded, whose workspace is gone or held by another
// run, or from a step the run does not have.
func TestResumeRequest(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := env.NewNamespace(t)
	repo, url := gitRepo(t)
	c1 := repo.RevParse(t, "main")
	startManager(t, ns)
	tr := newTrigger(ns, "app", url, "main")
	create(t, tr)
	first := render.TriggeredRunName(tr, "main", c1)
	g.Eventually(func(g Gomega) { g.Expect(commits(g, ns)).To(Equal([]string{ref("main", c1)})) }).WithTimeout(30 * time.Second).Should(Succeed())

	askRerun(t, ns, "app", "r1 "+first+" resume")
	g.Expect(runs(g, ns)).To(HaveLen(1), "a run that has not ended is not resumed")
	setRunStatus(t, ns, first, civ1alpha1.PhaseFailed, c1)
	askRerun(t, ns, "app", "r2 "+first+" resume Unit tests")
	g.Expect(runs(g, ns)).To(HaveLen(1), "a run whose workspace is gone is not resumed")

	src := &civ1alpha1.PipelineRun{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: first}, src)).To(Succeed())
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: render.WorkspaceName(src),
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(src, civ1alpha1.GroupVersion.WithKind("PipelineRun"))}},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
	create(t, pvc)
	cur := askRerun(t, ns, "app", "r3 "+first+" resume Unit tests")
	resumed := &civ1alpha1.PipelineRun{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: render.ResumeName(cur, src, "r3", "Unit tests")}, resumed)).To(Succeed())
	g.Expect(resumed.Spec.ResumeFrom).To(Equal(&civ1alpha1.ResumeSource{Run: first, From: "Unit tests", UID: string(src.UID)}))
	g.Expect(resumed.Spec.Revision).To(Equal(c1))
	g.Expect(resumed.Labels[civ1alpha1.LabelRerunOf]).To(Equal(first))
	g.Expect(metav1.GetControllerOf(resumed).UID).To(Equal(cur.UID))
	g.Expect(triggerstate.Created(&cur.Status, string(resumed.UID))).To(BeTrue(), "recorded for the reporter")

	askRerun(t, ns, "app", "r4 "+first+" resume Integration")
	// The resume took the workspace over: a second resume would only fail, red over its green.
	pvc.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(resumed, civ1alpha1.GroupVersion.WithKind("PipelineRun"))}
	g.Expect(env.Client.Update(ctx, pvc)).To(Succeed())
	askRerun(t, ns, "app", "r5 "+first+" resume")
	setRunStatus(t, ns, first, civ1alpha1.PhaseSucceeded, c1)
	askRerun(t, ns, "app", "r6 "+first+" resume")
	g.Expect(runs(g, ns)).To(HaveLen(2), "a resume from no step, of a workspace another run holds, of a run that succeeded: refused")
	g.Eventually(func(g Gomega) {
		g.Expect(refusals(g, ns, "app")).To(ContainElements(ContainSubstring("is gone"), ContainSubstring(`no step "Integration"`),
			ContainSubstring(`is held by PipelineRun "`+resumed.Name+`"`), ContainSubstring("only a failed run can be resumed")))
	}).WithTimeout(10 * time.Second).Should(Succeed())
}

// refusals are the notes of a trigger's RerunRefused events.
func refusals(g Gomega, ns, trigger string) []string {
	var out []string
	for _, e := range eventsOf(g, ns, trigger) {
		if e.Reason == civ1alpha1.EventRerunRefused {
			out = append(out, e.Note)
		}
	}
	return out
}

// askRerun writes a ci.flowci.dev/rerun request on a trigger and waits until the
// trigger handled it.
func askRerun(t *testing.T, ns, trigger, value string) *civ1alpha1.PipelineTrigger {
	t.Helper()
	g := NewWithT(t)
	g.Eventually(func(g Gomega) {
		cur := getTrigger(g, ns, trigger)
		cur.Annotations = map[string]string{civ1alpha1.AnnotationRerun: value}
		g.Expect(env.Client.Update(context.Background(), cur)).To(Succeed())
	}).WithTimeout(10 * time.Second).Should(Succeed())
	var cur *civ1alpha1.PipelineTrigger
	g.Eventually(func(g Gomega) {
		cur = getTrigger(g, ns, trigger)
		g.Expect(cur.Status.LastHandledRerun).To(Equal(value))
	}).WithTimeout(30 * time.Second).Should(Succeed())
	return cur
}

// setRunStatus writes a run's phase and commit as the PipelineRun controller would.
func setRunStatus(t *testing.T, ns, name string, phase civ1alpha1.PipelineRunPhase, commit string) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		run := &civ1alpha1.PipelineRun{}
		g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, run)).To(Succeed())
		run.Status.Phase, run.Status.Commit = phase, commit
		run.Status.Steps = []civ1alpha1.StepStatus{{Name: "build", Phase: civ1alpha1.StepSucceeded}, {Name: "Unit tests", Phase: civ1alpha1.StepFailed}}
		g.Expect(env.Client.Status().Update(context.Background(), run)).To(Succeed())
	}).WithTimeout(10 * time.Second).Should(Succeed())
}
