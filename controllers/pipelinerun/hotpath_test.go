package pipelinerun

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gittest"
	"github.com/flow-ci/flow-ci/internal/jobtest"
)

// meetSuccessCriteria plays the Job controller up to SuccessCriteriaMet, before it
// writes Complete: the pod succeeded and was counted.
func meetSuccessCriteria(t *testing.T, job *batchv1.Job) {
	t.Helper()
	finishPod(t, job, "node-a", 0, "")
	ctx := context.Background()
	NewWithT(t).Eventually(func(g Gomega) {
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(job), job)).To(Succeed())
		now := metav1.Now()
		job.Status.StartTime, job.Status.Succeeded = &now, 1 // set once: a first write
		job.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue,
			Reason: "CompletionsReached", LastTransitionTime: now, LastProbeTime: now}}
		g.Expect(env.Client.Status().Update(ctx, job)).To(Succeed())
	}).WithTimeout(10 * time.Second).Should(Succeed())
}

// TestHandoffAtSuccessCriteriaMet: the next step starts as soon as the Job controller
// says the step's Job met its success criteria, before it writes Complete; the step's
// exit code comes from its finished pod, which the cache no longer holds; and the
// Job, still finishing, is not stopped.
func TestHandoffAtSuccessCriteriaMet(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, twoSteps)
	startManager(t, ns)
	createRun(t, newRunObject(ns, "early", url))
	meetSuccessCriteria(t, waitJob(t, ns, "early-clone"))
	first := waitJob(t, ns, stepJobName(pinnedRun(t, ns, "early"), 0))
	meetSuccessCriteria(t, first)
	run := pinnedRun(t, ns, "early")
	second := waitJob(t, ns, stepJobName(run, 1))
	g.Eventually(func(g Gomega) {
		step := getRun(g, ns, "early").Status.Steps[0]
		g.Expect(step.Phase).To(Equal(civ1alpha1.StepSucceeded))
		g.Expect(step.ExitCode).To(HaveValue(BeEquivalentTo(0)), "read from the finished pod")
		g.Expect(step.Attempts).To(BeEquivalentTo(1))
	}).Should(Succeed())
	g.Consistently(func(g Gomega) {
		job := &batchv1.Job{}
		g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(first), job)).To(Succeed())
		g.Expect(job.DeletionTimestamp).To(BeNil(), "a Job that met its success criteria is not stopped")
	}).WithTimeout(2 * time.Second).Should(Succeed())
	// Complete after SuccessCriteriaMet changes nothing.
	setJobOutcome(t, first, batchv1.JobComplete, "")
	completeJob(t, second, "node-a")
	g.Expect(waitFinished(t, ns, "early").Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded))
	handoffs, _ := series(g, "flowci_step_handoff_seconds", ns)
	g.Expect(handoffs[""].GetHistogram().GetSampleCount()).To(Equal(uint64(2)), "the clone's handoff and the first step's, both at SuccessCriteriaMet")
}

// TestQueuedRunIsNotRewritten: a queued run's status says what it waits for, not a
// position, so it is written when it is queued and when it starts, never as the queue
// moves: draining a queue of Q runs costs writes linear in Q.
func TestQueuedRunIsNotRewritten(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, oneStep)
	startManager(t, ns)
	startFirstStep(t, ns, "w0", url, nil)
	for i := 1; i <= 3; i++ {
		r := newRunObject(ns, fmt.Sprintf("w%d", i), url)
		withPolicy(civ1alpha1.ConcurrencyQueue)(r)
		createRun(t, r)
		afterASecond()
	}
	versions := map[string]string{}
	g.Eventually(func(g Gomega) {
		for i := 1; i <= 3; i++ {
			r := getRun(g, ns, fmt.Sprintf("w%d", i))
			g.Expect(r.Status.Phase).To(Equal(civ1alpha1.PhaseQueued))
			g.Expect(succeededCond(r).Message).To(ContainSubstring("concurrencyPolicy: Queue"))
			versions[r.Name] = r.ResourceVersion
		}
	}).Should(Succeed())
	completeRun(t, ns, "w0")
	waitJob(t, ns, "w1-clone")
	g.Consistently(func(g Gomega) {
		for _, name := range []string{"w2", "w3"} {
			g.Expect(getRun(g, ns, name).ResourceVersion).To(Equal(versions[name]), "%s was rewritten while it waited", name)
		}
	}).WithTimeout(2 * time.Second).Should(Succeed())
	completeRun(t, ns, "w1")
	waitJob(t, ns, "w2-clone")
	g.Expect(getRun(g, ns, "w3").ResourceVersion).To(Equal(versions["w3"]))
	completeRun(t, ns, "w2")
	completeRun(t, ns, "w3")
}

// TestNamespaceHistoryLimit: finished runs of a namespace beyond
// --namespace-history-limit go, oldest first, whatever their branch: the runs of a
// deleted branch, which no new run of theirs prunes, do not pile up.
func TestNamespaceHistoryLimit(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	startManager(t, ns, func(r *Reconciler) { r.Lifecycle.NamespaceHistoryLimit = 2 })
	for i := range 3 {
		_, url := serveRepo(t, oneStep) // a repository each: no branch history shared
		name := fmt.Sprintf("h%d", i)
		createRun(t, newRunObject(ns, name, url))
		completeRun(t, ns, name)
		afterASecond()
	}
	g.Eventually(func(g Gomega) {
		list := &civ1alpha1.PipelineRunList{}
		g.Expect(env.Client.List(context.Background(), list, client.InNamespace(ns))).To(Succeed())
		var names []string
		for _, r := range list.Items {
			if r.DeletionTimestamp.IsZero() {
				names = append(names, r.Name)
			}
		}
		g.Expect(names).To(ConsistOf("h1", "h2"))
	}).WithTimeout(30 * time.Second).Should(Succeed())
}

// TestRunEndedMidFetchReleasesIt: a run cancelled while its definition fetch waits on a
// silent server leaves nothing in the fetcher once it has finished.
func TestRunEndedMidFetchReleasesIt(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	var r *Reconciler
	startManager(t, ns, func(rec *Reconciler) { r = rec })
	url := "http://" + gittest.NewSilentServer(t) + "/repo.git"
	createRun(t, newRunObject(ns, "stuck", url))
	run := &civ1alpha1.PipelineRun{}
	g.Eventually(func(g Gomega) {
		run = getRun(g, ns, "stuck")
		g.Expect(r.fetches.state(run.UID)).NotTo(BeNil(), "the fetch runs")
	}).Should(Succeed())
	g.Expect(env.Client.Patch(context.Background(), run, client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"cancel":true}}`)))).To(Succeed())
	g.Expect(waitFinished(t, ns, "stuck").Status.Phase).To(Equal(civ1alpha1.PhaseCancelled))
	g.Eventually(func() any { return r.fetches.state(run.UID) }).Should(BeNil())
}

// TestForgedPodsCostABoundedRead: pods a namespace member adds with a failed Job's
// labels, each large, make the read of the Job's pods stop at its budget; the step
// still ends with its Job's outcome and message, only without its exit code.
func TestForgedPodsCostABoundedRead(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, twoSteps)
	startManager(t, ns)
	first := startFirstStep(t, ns, "forged", url, nil)
	big := strings.Repeat("x", 600<<10)
	for i := range 3 {
		pod := jobtest.PodFor(first)
		pod.Name = fmt.Sprintf("forged-%d", i)
		pod.Spec.Containers[0].Env = append(pod.Spec.Containers[0].Env, corev1.EnvVar{Name: "BIG", Value: big})
		g.Expect(env.Client.Create(context.Background(), pod)).To(Succeed())
	}
	setJobOutcome(t, first, batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded)
	step := waitFinished(t, ns, "forged").Status.Steps[0]
	g.Expect(step.Phase).To(Equal(civ1alpha1.StepFailed))
	g.Expect(step.ExitCode).To(BeNil(), "the pods were over the read budget")
	g.Expect(step.Message).To(ContainSubstring("backoff limit"), "the Job's own message")
}
