package pipelinerun

import (
	"context"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/render"
)

const resumable = "name: Resumable\nsteps:\n- name: a\n  commands: [make a]\n- name: b\n  commands: [make b]\n" +
	"- name: c\n  commands: [make c]\n- name: d\n  commands: [make d]\nfinally:\n- name: report\n  commands: [echo done]\n"

// TestResumeRunsWhatFailed: a run that failed at its third step keeps its workspace;
// a run that resumes it takes the workspace over (its controller and labels), reuses
// the two steps that succeeded, checks the checkout (--verify) instead of cloning, and
// runs only the failed step, its dependent and the finally step. A second resume of the
// same run is refused: one run holds a workspace at a time.
func TestResumeRunsWhatFailed(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, resumable)
	startManager(t, ns)
	a := startFirstStep(t, ns, "old", url, func(r *civ1alpha1.PipelineRun) {
		r.Spec.Workspace.RetainOnFailure = &metav1.Duration{Duration: time.Hour}
	})
	run := pinnedRun(t, ns, "old")
	completeJob(t, a, "node-a")
	completeJob(t, stepJob(t, run, "b"), "node-a")
	failJob(t, stepJob(t, run, "c"), "node-a", 2, "c broke")
	completeJob(t, stepJob(t, run, "report"), "node-a")
	old := waitFinished(t, ns, "old")
	g.Expect(old.Status.Phase).To(Equal(civ1alpha1.PhaseFailed))
	ctx := context.Background()
	pvc := &corev1.PersistentVolumeClaim{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: render.WorkspaceName(old)}, pvc)).To(Succeed(), "retained")

	resume := func(name string) {
		r := newRunObject(ns, name, url)
		r.Spec.Revision = old.Status.Commit
		r.Spec.ResumeFrom = &civ1alpha1.ResumeSource{Run: "old"}
		createRun(t, r)
	}
	resume("new")
	clone := waitJob(t, ns, "new-clone")
	g.Expect(clone.Spec.Template.Spec.Containers[0].Args).To(ContainElement("--verify"))
	g.Expect(clone.Spec.Template.Spec.Volumes[0].PersistentVolumeClaim.ClaimName).To(Equal(pvc.Name), "the resumed run's workspace")
	var nw *civ1alpha1.PipelineRun
	g.Eventually(func(g Gomega) {
		nw = getRun(g, ns, "new")
		g.Expect(nw.Status.Workspace).To(Equal(pvc.Name))
	}).Should(Succeed())
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(pvc), pvc)).To(Succeed())
	g.Expect(metav1.GetControllerOf(pvc).UID).To(Equal(nw.UID), "taken over")
	g.Expect(pvc.Labels[civ1alpha1.LabelRunUID]).To(Equal(string(nw.UID)))
	for _, name := range []string{"a", "b"} {
		st := stepStatus(nw, name)
		g.Expect(st.Phase).To(Equal(civ1alpha1.StepSkipped), name)
		g.Expect(st.Reason).To(Equal(civ1alpha1.ReasonReused), name)
	}

	resume("again")
	again := waitFinished(t, ns, "again")
	cond := succeededCond(again)
	g.Expect(cond.Reason).To(Equal(civ1alpha1.ReasonResumeRefused))
	g.Expect(cond.Message).To(ContainSubstring(`is held by PipelineRun "new"`))
	g.Expect(jobsOf(g, ns)).NotTo(ContainElement(HaveField("ObjectMeta.Name", "again-clone")))

	completeJob(t, clone, "node-a")
	completeJob(t, stepJob(t, nw, "c"), "node-a")
	completeJob(t, stepJob(t, nw, "d"), "node-a")
	completeJob(t, stepJob(t, nw, "report"), "node-a")
	nw = waitFinished(t, ns, "new")
	g.Expect(nw.Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded), "%+v", nw.Status.Conditions)
	var ran []string
	for _, j := range jobsOf(g, ns) {
		if metav1.GetControllerOf(&j).UID == nw.UID {
			ran = append(ran, j.Name)
		}
	}
	slices.Sort(ran)
	g.Expect(ran).To(Equal([]string{stepJobName(nw, 2), stepJobName(nw, 3), stepJobName(nw, 4), "new-clone"}))

	// Like any run's, the workspace goes once the run that holds it succeeded.
	g.Eventually(func(g Gomega) {
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(pvc), pvc)).To(Succeed())
		g.Expect(pvc.DeletionTimestamp).NotTo(BeNil())
	}).Should(Succeed())
}

// TestResumeWithoutAWorkspace: a failed run that kept no workspace cannot be resumed,
// and says how to run it again.
func TestResumeWithoutAWorkspace(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, resumable)
	startManager(t, ns)
	a := startFirstStep(t, ns, "old", url, nil)
	failJob(t, a, "node-a", 1, "a broke")
	run := pinnedRun(t, ns, "old")
	completeJob(t, stepJob(t, run, "report"), "node-a")
	old := waitFinished(t, ns, "old")
	g.Eventually(func() bool {
		pvc := &corev1.PersistentVolumeClaim{}
		err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: render.WorkspaceName(old)}, pvc)
		return err != nil || pvc.DeletionTimestamp != nil // kept by its protection finalizer: no controller here removes it
	}).WithTimeout(10*time.Second).Should(BeTrue(), "deleted at the run's end")
	r := newRunObject(ns, "new", url)
	r.Spec.Revision = old.Status.Commit
	r.Spec.ResumeFrom = &civ1alpha1.ResumeSource{Run: "old"}
	createRun(t, r)
	cond := succeededCond(waitFinished(t, ns, "new"))
	g.Expect(cond.Reason).To(Equal(civ1alpha1.ReasonResumeRefused))
	g.Expect(cond.Message).To(ContainSubstring("is gone"))
	g.Expect(cond.Message).To(ContainSubstring("flowci rerun old"))
}
