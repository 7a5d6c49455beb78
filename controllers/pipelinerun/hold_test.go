package pipelinerun

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/jobtest"
	"github.com/flow-ci/flow-ci/internal/render"
)

// Two roots side by side, then a third step after both: the peak is two steps.
const holdGraph = `name: Hold
steps:
- name: a
  dependsOn: []
  commands: ["true"]
- name: b
  dependsOn: []
  commands: ["true"]
- name: c
  dependsOn: [a, b]
  commands: ["true"]
`

const testStepClass = "flow-ci-steps-test"

// withHold turns the hold on, with step requests for it to keep.
func withHold(r *Reconciler) {
	r.Render.StepPriorityClass = testStepClass
	r.Render.StepResources = corev1.ResourceRequirements{Requests: corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("300m"), corev1.ResourceMemory: resource.MustParse("64Mi")}}
}

func ensureStepClass(t *testing.T) {
	t.Helper()
	pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: testStepClass}, Value: 1,
		PreemptionPolicy: new(corev1.PreemptNever)}
	if err := env.Client.Create(context.Background(), pc); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// startHeldRun starts a run of holdGraph with the hold on, and waits for its clone Job.
func startHeldRun(t *testing.T, name string) (string, *civ1alpha1.PipelineRun, *batchv1.Job) {
	t.Helper()
	ensureStepClass(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, holdGraph)
	startManager(t, ns, withHold)
	run := newRunObject(ns, name, url)
	createRun(t, run)
	return ns, run, waitJob(t, ns, render.CloneJobName(run))
}

// bindPod creates the pod a Job would have run, bound to node and running.
func bindPod(t *testing.T, job *batchv1.Job, node string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	pod := jobtest.PodFor(job)
	pod.Spec.NodeName = node
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatalf("creating pod: %v", err)
	}
	pod.Status = running()
	if err := env.Client.Status().Update(ctx, pod); err != nil {
		t.Fatalf("updating pod status: %v", err)
	}
	return pod
}

func holdOf(g Gomega, run *civ1alpha1.PipelineRun) *corev1.Pod {
	pod := &corev1.Pod{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: run.Namespace, Name: render.HoldPodName(run)}, pod)).To(Succeed())
	return pod
}

func noHold(g Gomega, run *civ1alpha1.PipelineRun) {
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: run.Namespace, Name: render.HoldPodName(run)}, &corev1.Pod{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the hold is gone: %v", err)
}

// TestHoldKeepsTheRoomUntilTheStepsStart: from the moment the clone pod is bound, the
// run keeps the steps' peak on its node with a gated pod nominated there, through the
// clone's end, until the last step's pod is bound; then the hold goes. The pinned steps
// carry the class that outranks it.
func TestHoldKeepsTheRoomUntilTheStepsStart(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, run, clone := startHeldRun(t, "held")
	g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(run), run)).To(Succeed())
	g.Consistently(func(g Gomega) { noHold(g, run) }).WithTimeout(2*time.Second).Should(Succeed(), "no hold before the clone is bound")

	clonePod := bindPod(t, clone, "node-a")
	var hold *corev1.Pod
	g.Eventually(func(g Gomega) {
		hold = holdOf(g, run)
		g.Expect(hold.Status.NominatedNodeName).To(Equal("node-a"))
	}).WithTimeout(10 * time.Second).Should(Succeed())
	g.Expect(hold.Spec.SchedulingGates).To(ConsistOf(corev1.PodSchedulingGate{Name: civ1alpha1.SchedulingGateHold}))
	g.Expect(hold.Spec.Containers[0].Resources.Requests.Cpu().String()).To(Equal("600m"), "the peak: two steps side by side")
	g.Expect(metav1.IsControlledBy(hold, run)).To(BeTrue())

	clonePod.Status.Phase = corev1.PodSucceeded
	g.Expect(env.Client.Status().Update(context.Background(), clonePod)).To(Succeed())
	setJobOutcome(t, clone, batchv1.JobComplete, "")
	run = pinnedRun(t, ns, "held")
	a, b := waitJob(t, ns, stepJobName(run, 0)), waitJob(t, ns, stepJobName(run, 1))
	for _, j := range []*batchv1.Job{a, b} {
		g.Expect(j.Spec.Template.Spec.PriorityClassName).To(Equal(testStepClass))
		g.Expect(render.PinnedNode(j)).To(Equal("node-a"))
	}
	g.Consistently(func(g Gomega) { holdOf(g, run) }).WithTimeout(3*time.Second).Should(Succeed(), "kept while a and b are not bound")
	bindPod(t, a, "node-a")
	bindPod(t, b, "node-a")
	g.Consistently(func(g Gomega) { holdOf(g, run) }).WithTimeout(3*time.Second).Should(Succeed(), "kept while c has not started")
	completeJob2(t, a)
	completeJob2(t, b)
	c := waitJob(t, ns, stepJobName(run, 2))
	holdOf(g, run)
	bindPod(t, c, "node-a")
	g.Eventually(func(g Gomega) { noHold(g, run) }).WithTimeout(10*time.Second).Should(Succeed(), "released once every step's pod is bound")
	// A retry's pod, not bound yet, does not bring a hold back.
	retry := jobtest.PodFor(c)
	retry.Name += "-retry"
	g.Expect(env.Client.Create(context.Background(), retry)).To(Succeed())
	g.Consistently(func(g Gomega) { noHold(g, run) }).WithTimeout(3 * time.Second).Should(Succeed())
	g.Expect(env.Client.Delete(context.Background(), retry)).To(Succeed())
	completeJob2(t, c)
	g.Expect(waitFinished(t, ns, "held").Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded))
}

// completeJob2 ends a Job whose pod bindPod made.
func completeJob2(t *testing.T, job *batchv1.Job) {
	t.Helper()
	pod := &corev1.Pod{}
	g := NewWithT(t)
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: job.Namespace, Name: job.Name + "-pod"}, pod)).To(Succeed())
	now := metav1.Now()
	pod.Status = corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{
		Name: pod.Spec.Containers[0].Name, Image: pod.Spec.Containers[0].Image, ImageID: "sha256:test",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed", StartedAt: now, FinishedAt: now}},
	}}}
	g.Expect(env.Client.Status().Update(context.Background(), pod)).To(Succeed())
	setJobOutcome(t, job, batchv1.JobComplete, "")
}

// TestForgedHoldIsNotNominated: a tenant who may create pods can make one named and
// owned like the run's hold, ungated or with their own requests. The operator never
// nominates it (that would hold a node's room for the tenant's pod) and the run goes on
// without a hold.
func TestForgedHoldIsNotNominated(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns, run, clone := startHeldRun(t, "forged")
	forged := render.RenderHoldPod(run, testRender, "node-a", corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("64")})
	forged.Spec.Containers[0].Image = "busybox:tenant"
	g.Expect(env.Client.Create(context.Background(), forged)).To(Succeed(), "gated, owned like the hold, with the tenant's requests and image")
	bindPod(t, clone, "node-a")
	g.Consistently(func(g Gomega) {
		g.Expect(holdOf(g, run).Status.NominatedNodeName).To(BeEmpty())
	}).WithTimeout(4 * time.Second).Should(Succeed())
	g.Expect(holdOf(g, run).UID).To(Equal(forged.UID), "left untouched")
	g.Expect(getRun(g, ns, "forged").Status.Phase.IsFinished()).To(BeFalse(), "the run goes on")
}
