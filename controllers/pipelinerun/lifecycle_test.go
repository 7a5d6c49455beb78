package pipelinerun

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/jobtest"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

const twoSteps = "name: Two\nsteps:\n- name: first\n  commands:\n  - sleep 600\n- name: second\n  commands:\n  - echo done\n"

// startFirstStep creates a run, completes its clone and returns the first step's Job.
func startFirstStep(t *testing.T, ns, name, url string, mutate func(*civ1alpha1.PipelineRun)) *batchv1.Job {
	t.Helper()
	run := newRunObject(ns, name, url)
	if mutate != nil {
		mutate(run)
	}
	createRun(t, run)
	completeJob(t, waitJob(t, ns, name+"-clone"), "node-a")
	return waitJob(t, ns, stepJobName(pinnedRun(t, ns, name), 0))
}

// podFor creates the Job's pod in the given state, as the kubelet would report it.
func podFor(t *testing.T, job *batchv1.Job, status corev1.PodStatus) {
	t.Helper()
	pod := jobtest.PodFor(job)
	g := NewWithT(t)
	g.Expect(env.Client.Create(context.Background(), pod)).To(Succeed())
	pod.Status = status
	g.Expect(env.Client.Status().Update(context.Background(), pod)).To(Succeed())
}

func running() corev1.PodStatus {
	now := metav1.Now()
	return corev1.PodStatus{Phase: corev1.PodRunning,
		Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "step", Image: "busybox:test", ImageID: "sha256:x",
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}}}
}

func jobGone(g Gomega, job *batchv1.Job) {
	err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(job), &batchv1.Job{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "Job %s should be deleted: %v", job.Name, err)
}

// waitJobGone waits for the controller to stop (delete) a Job.
func waitJobGone(t *testing.T, job *batchv1.Job) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) { jobGone(g, job) }).WithTimeout(15 * time.Second).Should(Succeed())
}

func succeededCond(run *civ1alpha1.PipelineRun) *metav1.Condition {
	return apimeta.FindStatusCondition(run.Status.Conditions, civ1alpha1.ConditionSucceeded)
}

func TestRunTimeout(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, twoSteps)
	startManager(t, ns)
	job := startFirstStep(t, ns, "slow", url, func(r *civ1alpha1.PipelineRun) { r.Spec.Timeout = &metav1.Duration{Duration: 4 * time.Second} })
	podFor(t, job, running())

	run := waitFinished(t, ns, "slow")
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseFailed))
	g.Expect(succeededCond(run).Reason).To(Equal(civ1alpha1.ReasonTimedOut))
	g.Expect(succeededCond(run).Message).To(Equal("the run exceeded its timeout of 4s"))
	g.Expect(run.Status.CompletionTime.Sub(run.Status.StartTime.Time)).To(BeNumerically("<", 10*time.Second),
		"woken at the deadline by RequeueAfter, not by polling or an unrelated event")
	g.Expect(run.Status.Steps[0].Phase).To(Equal(civ1alpha1.StepFailed))
	g.Expect(run.Status.Steps[0].Reason).To(Equal(civ1alpha1.ReasonTimedOut))
	g.Expect(run.Status.Steps[0].Message).To(Equal("log tail of " + job.Name + "-pod"))
	g.Expect(run.Status.Steps[1].Phase).To(Equal(civ1alpha1.StepSkipped))
	waitJobGone(t, job)
}

func TestCancel(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, twoSteps)
	startManager(t, ns)
	job := startFirstStep(t, ns, "stopme", url, nil)
	podFor(t, job, running())

	out, err := kubectlPatchCancel(ns, "stopme", true)
	g.Expect(err).NotTo(HaveOccurred(), out)
	run := waitFinished(t, ns, "stopme")
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseCancelled))
	g.Expect(succeededCond(run).Status).To(Equal(metav1.ConditionFalse))
	g.Expect(succeededCond(run).Reason).To(Equal(civ1alpha1.ReasonCancelled))
	g.Expect(run.Status.Steps[0].Phase).To(Equal(civ1alpha1.StepCancelled))
	g.Expect(run.Status.Steps[0].Message).To(Equal("log tail of " + job.Name + "-pod"))
	g.Expect(run.Status.Steps[1].Phase).To(Equal(civ1alpha1.StepSkipped))
	waitJobGone(t, job)
	g.Eventually(func() []string { return eventReasons(t, ns) }).Should(ContainElement("Normal/Cancelled"))

	_, err = kubectlPatchCancel(ns, "stopme", false)
	g.Expect(err).To(MatchError(ContainSubstring("cancel cannot be undone")))

	// An edit of the finished run (a TTL) is observed: kubectl wait and kstatus see the
	// outcome as current, and nothing else of it changes.
	ttl := &civ1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "stopme"}}
	g.Expect(env.Client.Patch(context.Background(), ttl, client.RawPatch("application/merge-patch+json",
		[]byte(`{"spec":{"ttlSecondsAfterFinished":3600}}`)))).To(Succeed())
	g.Eventually(func(g Gomega) {
		cur := getRun(g, ns, "stopme")
		g.Expect(cur.Generation).To(BeNumerically(">", run.Generation))
		g.Expect(cur.Status.ObservedGeneration).To(Equal(cur.Generation))
		g.Expect(succeededCond(cur).ObservedGeneration).To(Equal(cur.Generation))
		g.Expect(cur.Status.Phase).To(Equal(civ1alpha1.PhaseCancelled))
		g.Expect(cur.Status.CompletionTime).To(Equal(run.Status.CompletionTime))
	}).WithTimeout(15 * time.Second).Should(Succeed())
}

// kubectlPatchCancel is `kubectl patch fpr X --type merge -p '{"spec":{"cancel":...}}'`.
func kubectlPatchCancel(ns, name string, cancel bool) (string, error) {
	run := &civ1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	patch := []byte(`{"spec":{"cancel":false}}`)
	if cancel {
		patch = []byte(`{"spec":{"cancel":true}}`)
	}
	return "", env.Client.Patch(context.Background(), run, client.RawPatch("application/merge-patch+json", patch))
}

func TestWatchdogs(t *testing.T) {
	t.Parallel()
	_, url := serveRepo(t, twoSteps)
	waiting := func(reason, msg string) corev1.PodStatus {
		st := running()
		st.Phase = corev1.PodPending
		st.ContainerStatuses[0].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}
		return st
	}
	unschedulable := corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
		Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable",
		Message: "0/3 nodes are available: 3 Insufficient cpu.", LastTransitionTime: metav1.Now()}}}
	cases := []struct {
		name, reason, message string
		status                corev1.PodStatus
	}{
		{"image-pull", civ1alpha1.ReasonImagePullFailed, "image busybox:test of container step: ImagePullBackOff",
			waiting("ImagePullBackOff", `Back-off pulling image "busybox:test"`)},
		{"create-container", civ1alpha1.ReasonCreateContainerFailed, "CreateContainerConfigError: secret \"x\" not found",
			waiting("CreateContainerConfigError", `secret "x" not found`)},
		{"unschedulable", civ1alpha1.ReasonUnschedulable, "Insufficient cpu", unschedulable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			ns := env.NewNamespace(t)
			startManager(t, ns, func(r *Reconciler) {
				r.Lifecycle.Watchdogs = runstate.Watchdogs{Unschedulable: 3 * time.Second, ImagePull: 3 * time.Second}
			})
			job := startFirstStep(t, ns, tc.name, url, nil)
			podFor(t, job, tc.status)
			run := waitFinished(t, ns, tc.name)
			g.Expect(succeededCond(run).Reason).To(Equal(tc.reason))
			g.Expect(succeededCond(run).Message).To(ContainSubstring(tc.message))
			g.Expect(run.Status.Steps[0].Reason).To(Equal(tc.reason))
			g.Expect(run.Status.Steps[1].Phase).To(Equal(civ1alpha1.StepSkipped))
			// Its timing comes from its pod, still pending, although no Job ended it.
			tm := run.Status.Steps[0].Timing
			g.Expect(tm).NotTo(BeNil())
			g.Expect(tm.JobCreationTime).NotTo(BeNil())
			g.Expect(tm.PodCreationTime).NotTo(BeNil(), "the pending pod's creation")
			waitJobGone(t, job)
		})
	}
}

func TestStepJobDeleted(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, twoSteps)
	startManager(t, ns)
	job := startFirstStep(t, ns, "orphan", url, nil)
	g.Eventually(func(g Gomega) {
		g.Expect(getRun(g, ns, "orphan").Status.Steps[0].Phase).To(Equal(civ1alpha1.StepRunning))
	}).Should(Succeed())
	g.Expect(env.Client.Delete(context.Background(), job, client.PropagationPolicy(metav1.DeletePropagationBackground))).To(Succeed())
	run := waitFinished(t, ns, "orphan")
	g.Expect(succeededCond(run).Reason).To(Equal(civ1alpha1.ReasonStepJobDeleted))
	g.Consistently(func(g Gomega) { jobGone(g, job) }).WithTimeout(2*time.Second).Should(Succeed(), "never recreated")
}

func TestRetriesShowAttempts(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, "name: Flaky\nsteps:\n- name: flaky\n  retries: 2\n  commands:\n  - ./flaky.sh\n")
	startManager(t, ns)
	job := startFirstStep(t, ns, "flaky", url, nil)
	g.Expect(*job.Spec.BackoffLimit).To(BeEquivalentTo(2))
	g.Expect(job.Spec.PodFailurePolicy.Rules[0].Action).To(Equal(batchv1.PodFailurePolicyActionIgnore))
	// The Job exists before the status of the pass that created it is written.
	g.Eventually(func(g Gomega) {
		g.Expect(getRun(g, ns, "flaky").Status.Steps[0].Attempts).To(BeEquivalentTo(1))
	}).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(job), job)).To(Succeed())
		job.Status.Failed, job.Status.Active = 2, 1
		g.Expect(env.Client.Status().Update(context.Background(), job)).To(Succeed())
	}).Should(Succeed())
	// A retry is not worth a status write of its own: the attempts come with the end.
	g.Consistently(func(g Gomega) {
		g.Expect(getRun(g, ns, "flaky").Status.Steps[0].Attempts).To(BeEquivalentTo(1))
	}).WithTimeout(time.Second).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(job), job)).To(Succeed())
		job.Status.Active, job.Status.Succeeded = 0, 1
		g.Expect(env.Client.Status().Update(context.Background(), job)).To(Succeed())
	}).Should(Succeed())
	completeJob(t, job, "node-a")
	step := waitFinished(t, ns, "flaky").Status.Steps[0]
	g.Expect(step.Phase).To(Equal(civ1alpha1.StepSucceeded))
	g.Expect(step.Attempts).To(BeEquivalentTo(3))
	g.Expect(step.Flaky).To(BeTrue(), "it succeeded on a retry")
}
