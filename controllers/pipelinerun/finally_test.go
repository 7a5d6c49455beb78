package pipelinerun

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/render"
)

const withFinally = `name: Finally
steps:
- name: test
  commands: [make test]
finally:
- name: notify
  when: {status: failure}
  commands: [./notify.sh]
- name: report
  when: {status: success}
  commands: [./report.sh]
- name: cleanup
  commands: [./cleanup.sh]
`

// TestFinallyAfterFailure: the failed step's finally steps run (status failure and
// always), the success-only one is skipped, and the run still fails with the step's
// reason.
func TestFinallyAfterFailure(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, withFinally)
	startManager(t, ns)
	test := startFirstStep(t, ns, "fin", url, nil)
	g.Expect(jobsOf(g, ns)).To(HaveLen(2), "finally steps wait for the graph")
	failJob(t, test, "node-a", 1, "")
	run := getRun(g, ns, "fin")
	notify, cleanup := stepJob(t, run, "notify"), stepJob(t, run, "cleanup")
	g.Expect(render.PinnedNode(notify)).To(Equal("node-a"), "finally shares the workspace")
	g.Eventually(func(g Gomega) {
		run := getRun(g, ns, "fin")
		g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseRunning))
		g.Expect(stepStatus(run, "notify").Finally).To(BeTrue())
		g.Expect(stepStatus(run, "report").Phase).To(Equal(civ1alpha1.StepSkipped))
		g.Expect(stepStatus(run, "report").Reason).To(Equal(civ1alpha1.ReasonWhenFalse))
	}).Should(Succeed())
	completeJob(t, notify, "node-a")
	completeJob(t, cleanup, "node-a")
	run = waitFinished(t, ns, "fin")
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseFailed))
	g.Expect(succeededCond(run).Reason).To(Equal(civ1alpha1.ReasonStepFailed))
	g.Expect(stepStatus(run, "cleanup").Phase).To(Equal(civ1alpha1.StepSucceeded))
}

// TestFinallyAfterTimeout: at spec.timeout the running step is stopped and the finally
// steps start with --finally-grace of their own; past it they are stopped and the run
// ends TimedOut.
func TestFinallyAfterTimeout(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, withFinally)
	startManager(t, ns, func(r *Reconciler) { r.Lifecycle.FinallyGrace = 3 * time.Second })
	test := startFirstStep(t, ns, "fto", url, func(r *civ1alpha1.PipelineRun) {
		r.Spec.Timeout = &metav1.Duration{Duration: 4 * time.Second}
	})
	podFor(t, test, running())
	run := getRun(g, ns, "fto")
	notify := stepJob(t, run, "notify")
	podFor(t, notify, running())
	g.Eventually(func(g Gomega) {
		run := getRun(g, ns, "fto")
		g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseRunning), "finally gets its grace")
		g.Expect(stepStatus(run, "test").Reason).To(Equal(civ1alpha1.ReasonTimedOut))
		g.Expect(stepStatus(run, "test").Message).To(Equal("log tail of " + test.Name + "-pod"))
	}).WithTimeout(2 * time.Second).Should(Succeed())
	waitJobGone(t, test)

	run = waitFinished(t, ns, "fto")
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseFailed))
	g.Expect(succeededCond(run).Reason).To(Equal(civ1alpha1.ReasonTimedOut))
	g.Expect(succeededCond(run).Message).To(ContainSubstring("--finally-grace (3s)"))
	g.Expect(run.Status.CompletionTime.Sub(run.Status.StartTime.Time)).To(BeNumerically("<", 12*time.Second))
	g.Expect(stepStatus(run, "notify").Phase).To(Equal(civ1alpha1.StepFailed))
	waitJobGone(t, notify)
}

// TestFinallyAfterTimeoutInGrace: finally steps that end within the grace end the run
// at once, still TimedOut.
func TestFinallyAfterTimeoutInGrace(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, withFinally)
	startManager(t, ns, func(r *Reconciler) { r.Lifecycle.FinallyGrace = time.Minute })
	test := startFirstStep(t, ns, "fig", url, func(r *civ1alpha1.PipelineRun) {
		r.Spec.Timeout = &metav1.Duration{Duration: 3 * time.Second}
	})
	podFor(t, test, running())
	run := getRun(g, ns, "fig")
	completeJob(t, stepJob(t, run, "notify"), "node-a")
	completeJob(t, stepJob(t, run, "cleanup"), "node-a")
	run = waitFinished(t, ns, "fig")
	g.Expect(succeededCond(run).Reason).To(Equal(civ1alpha1.ReasonTimedOut))
	g.Expect(run.Status.CompletionTime.Sub(run.Status.StartTime.Time)).To(BeNumerically("<", 30*time.Second))
	g.Expect(stepStatus(run, "cleanup").Phase).To(Equal(civ1alpha1.StepSucceeded))
}

// TestStepResourcesOverMax: a request over --max-step-resources fails the run at
// validation with the path and line; nothing is cloned.
func TestStepResourcesOverMax(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, "name: t\nsteps:\n- name: small\n  commands: [true]\n- name: big\n  resources: {memory: 64Gi}\n  commands: [true]\n")
	startManager(t, ns, func(r *Reconciler) {
		r.Render.MaxStepResources = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("8Gi")}
	})
	createRun(t, newRunObject(ns, "big", url))
	run := waitFinished(t, ns, "big")
	g.Expect(succeededCond(run).Reason).To(Equal(civ1alpha1.ReasonInvalidDefinition))
	g.Expect(succeededCond(run).Message).To(ContainSubstring(
		`steps[1].resources: the memory request 64Gi of step "big" is above the operator's maximum of 8Gi`))
	g.Expect(succeededCond(run).Message).To(ContainSubstring("(line 6)"))
	g.Expect(jobsOf(g, ns)).To(BeEmpty())
}

// TestReadWriteOncePodRefusesParallel: one pod at a time cannot serve steps that may
// overlap; sequential files keep working on such a volume.
func TestReadWriteOncePodRefusesParallel(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, diamond)
	_, seqURL := serveRepo(t, twoSteps)
	startManager(t, ns)
	rwop := func(r *civ1alpha1.PipelineRun) {
		r.Spec.Workspace.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod}
	}
	run := newRunObject(ns, "rwop", url)
	rwop(run)
	createRun(t, run)
	run = waitFinished(t, ns, "rwop")
	g.Expect(succeededCond(run).Reason).To(Equal(civ1alpha1.ReasonInvalidSpec))
	g.Expect(succeededCond(run).Message).To(And(ContainSubstring("ReadWriteOncePod"), ContainSubstring(`"b"`), ContainSubstring(`"c"`)))
	startFirstStep(t, ns, "rwop-seq", seqURL, rwop)
}

// TestReadWriteManyUnpinned: with a volume every node can mount, steps are not pinned
// and the clone reserves nothing for them.
func TestReadWriteManyUnpinned(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, diamond)
	startManager(t, ns)
	a := startFirstStep(t, ns, "rwx", url, func(r *civ1alpha1.PipelineRun) {
		r.Spec.Workspace.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
	})
	g.Expect(render.PinnedNode(a)).To(BeEmpty())
	clone := waitJob(t, ns, "rwx-clone")
	g.Expect(clone.Spec.Template.Spec.Containers[0].Resources.Requests.Cpu().MilliValue()).To(BeNumerically("<", 1000))
	completeJob(t, a, "node-a")
	run := getRun(g, ns, "rwx")
	g.Expect(render.PinnedNode(stepJob(t, run, "b"))).To(BeEmpty())
}
