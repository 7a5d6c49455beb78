package pipelinerun

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

const oneStep = "name: One\nsteps:\n- name: only\n  commands:\n  - echo hi\n"

func withPolicy(p civ1alpha1.ConcurrencyPolicy) func(*civ1alpha1.PipelineRun) {
	return func(r *civ1alpha1.PipelineRun) { r.Spec.ConcurrencyPolicy = p }
}

// completeRun completes the clone and every step of a running run.
func completeRun(t *testing.T, ns, name string) {
	t.Helper()
	run := pinnedRun(t, ns, name)
	for _, jobName := range append([]string{name + "-clone"}, stepJobNames(run)...) {
		if job := waitJob(t, ns, jobName); runstate.JobOutcome(job) == "" {
			completeJob(t, job, "node-a")
		}
	}
	waitFinished(t, ns, name)
}

func stepJobNames(run *civ1alpha1.PipelineRun) []string {
	var names []string
	for i := range run.Status.Steps {
		names = append(names, stepJobName(run, i))
	}
	return names
}

// afterASecond lets creation timestamps, which have one-second resolution, order runs.
func afterASecond() { time.Sleep(1100 * time.Millisecond) }

func phaseOf(g Gomega, ns, name string) civ1alpha1.PipelineRunPhase {
	return getRun(g, ns, name).Status.Phase
}

func TestConcurrencyForbid(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, oneStep)
	startManager(t, ns)
	startFirstStep(t, ns, "first", url, nil)
	afterASecond()
	second := newRunObject(ns, "second", url)
	withPolicy(civ1alpha1.ConcurrencyForbid)(second)
	createRun(t, second)
	run := waitFinished(t, ns, "second")
	g.Expect(succeededCond(run).Reason).To(Equal(civ1alpha1.ReasonConcurrencyForbidden))
	g.Expect(succeededCond(run).Message).To(ContainSubstring(`run "first"`))

	// Allow, the default, runs beside the active one.
	createRun(t, newRunObject(ns, "allowed", url))
	waitJob(t, ns, "allowed-clone")

	// Another branch is another group: admitted, it gets as far as resolving the branch,
	// which this repository does not have.
	other := newRunObject(ns, "other-branch", url)
	other.Spec.Branch = "main2"
	withPolicy(civ1alpha1.ConcurrencyForbid)(other)
	createRun(t, other)
	g.Expect(succeededCond(waitFinished(t, ns, "other-branch")).Reason).To(Equal(civ1alpha1.ReasonBranchNotFound))
}

func TestConcurrencyReplace(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, twoSteps)
	startManager(t, ns)
	old := startFirstStep(t, ns, "old", url, nil)
	afterASecond()
	newer := newRunObject(ns, "newer", url)
	withPolicy(civ1alpha1.ConcurrencyReplace)(newer)
	createRun(t, newer)
	run := waitFinished(t, ns, "old")
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseCancelled))
	g.Expect(succeededCond(run).Message).To(Equal(`replaced by the newer run "newer"`))
	waitJobGone(t, old)
	waitJob(t, ns, "newer-clone")
}

func TestConcurrencyQueue(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, oneStep)
	startManager(t, ns)
	startFirstStep(t, ns, "q0", url, nil)
	for i := 1; i <= 2; i++ {
		r := newRunObject(ns, fmt.Sprintf("q%d", i), url)
		withPolicy(civ1alpha1.ConcurrencyQueue)(r)
		createRun(t, r)
		afterASecond()
	}
	g.Eventually(func(g Gomega) {
		q1, q2 := getRun(g, ns, "q1"), getRun(g, ns, "q2")
		g.Expect(q1.Status.Phase).To(Equal(civ1alpha1.PhaseQueued))
		g.Expect(q2.Status.Phase).To(Equal(civ1alpha1.PhaseQueued))
		g.Expect(succeededCond(q2).Message).To(Equal("waiting for the older runs of this repository and branch to end (concurrencyPolicy: Queue)"))
		g.Expect(q1.Status.StartTime).To(BeNil(), "the timeout does not count while queued")
	}).Should(Succeed())
	g.Expect(jobsOf(g, ns)).To(HaveLen(2), "no Job for a queued run")

	completeRun(t, ns, "q0")
	waitJob(t, ns, "q1-clone")
	g.Consistently(func(g Gomega) { g.Expect(phaseOf(g, ns, "q2")).To(Equal(civ1alpha1.PhaseQueued)) }).WithTimeout(time.Second).Should(Succeed())
	completeRun(t, ns, "q1")
	completeRun(t, ns, "q2")
}

func TestMaxActiveRuns(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	startManager(t, ns, func(r *Reconciler) { r.Lifecycle.MaxActiveRuns = 1 })
	// Different repositories: only the cluster-wide limit applies.
	_, urlA := serveRepo(t, oneStep)
	_, urlB := serveRepo(t, oneStep)
	startFirstStep(t, ns, "a", urlA, nil)
	afterASecond()
	createRun(t, newRunObject(ns, "b", urlB))
	g.Eventually(func(g Gomega) {
		b := getRun(g, ns, "b")
		g.Expect(b.Status.Phase).To(Equal(civ1alpha1.PhaseQueued))
		g.Expect(succeededCond(b).Message).To(ContainSubstring("--max-active-runs"))
	}).Should(Succeed())
	completeRun(t, ns, "a")
	completeRun(t, ns, "b")
}

func TestWorkspaceDeletedWhenRunEnds(t *testing.T) {
	t.Parallel()
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, oneStep)
	startManager(t, ns)
	cases := []struct {
		name   string
		retain *metav1.Duration
		fail   bool
		kept   bool
	}{
		{"ok", nil, false, false},
		{"failed", nil, true, false},
		{"failed-retained", &metav1.Duration{Duration: time.Hour}, true, true},
		{"succeeded-not-retained", &metav1.Duration{Duration: time.Hour}, false, false},
		{"failed-retained-briefly", &metav1.Duration{Duration: 3 * time.Second}, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			job := startFirstStep(t, ns, tc.name, url, func(r *civ1alpha1.PipelineRun) { r.Spec.Workspace.RetainOnFailure = tc.retain })
			pvc := &corev1.PersistentVolumeClaim{}
			key := client.ObjectKey{Namespace: ns, Name: tc.name + "-ws"}
			g.Expect(env.Client.Get(context.Background(), key, pvc)).To(Succeed())
			if tc.fail {
				failJob(t, job, "node-a", 1, "boom")
			} else {
				completeJob(t, job, "node-a")
			}
			waitFinished(t, ns, tc.name)
			check := func(g Gomega) {
				err := env.Client.Get(context.Background(), key, pvc)
				if tc.kept {
					g.Expect(err).NotTo(HaveOccurred())
					g.Expect(pvc.DeletionTimestamp).To(BeNil())
				} else {
					// envtest has no PVC protection controller: deleted means gone or terminating.
					g.Expect(apierrors.IsNotFound(err) || pvc.DeletionTimestamp != nil).To(BeTrue(), "workspace of %s left behind", tc.name)
				}
			}
			if tc.kept {
				g.Consistently(check).WithTimeout(2 * time.Second).Should(Succeed())
			} else {
				g.Eventually(check).WithTimeout(15 * time.Second).Should(Succeed())
			}
		})
	}
}

func TestTTLAfterFinished(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, oneStep)
	startManager(t, ns)
	startFirstStep(t, ns, "short-lived", url, func(r *civ1alpha1.PipelineRun) { r.Spec.TTLSecondsAfterFinished = ptr.To[int32](2) })
	completeRun(t, ns, "short-lived")
	g.Eventually(func() bool {
		err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "short-lived"}, &civ1alpha1.PipelineRun{})
		return apierrors.IsNotFound(err)
	}).WithTimeout(15 * time.Second).Should(BeTrue())
}

func TestHistoryLimits(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, oneStep)
	_, otherURL := serveRepo(t, oneStep)
	startManager(t, ns, func(r *Reconciler) {
		r.Lifecycle.SuccessfulHistoryLimit, r.Lifecycle.FailedHistoryLimit = 2, 1
	})
	for i := range 4 {
		startFirstStep(t, ns, fmt.Sprintf("ok-%d", i), url, nil)
		completeRun(t, ns, fmt.Sprintf("ok-%d", i))
		afterASecond() // completion order has one-second resolution too
	}
	for i := range 2 {
		job := startFirstStep(t, ns, fmt.Sprintf("bad-%d", i), url, nil)
		failJob(t, job, "node-a", 1, "boom")
		waitFinished(t, ns, fmt.Sprintf("bad-%d", i))
		afterASecond()
	}
	startFirstStep(t, ns, "elsewhere", otherURL, nil)
	completeRun(t, ns, "elsewhere")
	g.Eventually(func(g Gomega) {
		list := &civ1alpha1.PipelineRunList{}
		g.Expect(env.Client.List(context.Background(), list, client.InNamespace(ns))).To(Succeed())
		var names []string
		for _, r := range list.Items {
			names = append(names, r.Name)
		}
		g.Expect(names).To(ConsistOf("ok-2", "ok-3", "bad-1", "elsewhere"))
	}).WithTimeout(15 * time.Second).Should(Succeed())
	// The API server selects runs by their spec (the CRD's selectableFields), so the
	// controller writes no labels to make them findable.
	sel := &civ1alpha1.PipelineRunList{}
	g.Expect(env.Client.List(context.Background(), sel, client.InNamespace(ns),
		client.MatchingFields{civ1alpha1.FieldRepoURL: otherURL, civ1alpha1.FieldBranch: "main"})).To(Succeed())
	g.Expect(sel.Items).To(HaveLen(1))
	g.Expect(sel.Items[0].Name).To(Equal("elsewhere"))
	g.Expect(sel.Items[0].Labels).To(BeEmpty())
}

// TestReusedNameDoesNotAdopt deletes a run whose children remain (envtest runs no
// garbage collector, like a GC that has not caught up) and creates a new run with the
// same name: it waits for them and never adopts them.
func TestReusedNameDoesNotAdopt(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, oneStep)
	startManager(t, ns)
	oldJob := startFirstStep(t, ns, "again", url, nil)
	old := getRun(g, ns, "again")
	g.Expect(env.Client.Delete(context.Background(), old)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(env.Client.Get(context.Background(), client.ObjectKeyFromObject(old), &civ1alpha1.PipelineRun{}))
	}).Should(BeTrue())
	createRun(t, newRunObject(ns, "again", url))
	g.Eventually(func(g Gomega) {
		c := apimeta.FindStatusCondition(getRun(g, ns, "again").Status.Conditions, civ1alpha1.ConditionReconciling)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Message).To(ContainSubstring("of an earlier run named \"again\""))
	}).WithTimeout(20 * time.Second).Should(Succeed())
	g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(oldJob), oldJob)).To(Succeed())
	g.Expect(oldJob.OwnerReferences[0].UID).To(Equal(old.UID), "the old Job was not adopted")

	// Play the garbage collector (and the PVC protection controller): the old children
	// go, and the new run proceeds.
	for _, o := range []client.Object{oldJob,
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "again-def"}},
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "again-ws"}},
		&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "again-clone"}}} {
		_ = env.Client.Patch(context.Background(), o, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"finalizers":null}}`)))
		_ = env.Client.Delete(context.Background(), o, client.PropagationPolicy(metav1.DeletePropagationBackground))
	}
	g.Eventually(func(g Gomega) {
		job := waitJob(t, ns, "again-clone")
		g.Expect(job.OwnerReferences[0].UID).NotTo(Equal(old.UID))
	}).WithTimeout(30 * time.Second).Should(Succeed())
}
