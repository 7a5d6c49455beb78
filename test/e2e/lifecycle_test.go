//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gittest"
)

const sleepy = `name: Sleepy
steps:
- name: Sleep
  commands:
  - echo started sleeping
  - sleep 300
- name: After
  commands:
  - echo never
`

// waitStep waits until the run's current step is step.
func waitStep(t *testing.T, ns, name, step string) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		g.Expect(getRun(g, ns, name).Status.CurrentStep).To(Equal(step))
	}).WithTimeout(3 * time.Minute).WithPolling(time.Second).Should(Succeed())
}

func reason(run *civ1alpha1.PipelineRun) string {
	if c := apimeta.FindStatusCondition(run.Status.Conditions, civ1alpha1.ConditionSucceeded); c != nil {
		return c.Reason
	}
	return ""
}

// noLeftovers waits until nothing the run owned is left: Jobs, pods, PVCs, ConfigMaps.
func noLeftovers(t *testing.T, ns string, uid string, what string) {
	t.Helper()
	sel := client.MatchingLabels{civ1alpha1.LabelRunUID: uid}
	NewWithT(t).Eventually(func(g Gomega) {
		for _, list := range []client.ObjectList{&batchv1.JobList{}, &corev1.PodList{}, &corev1.PersistentVolumeClaimList{}, &corev1.ConfigMapList{}} {
			g.Expect(k8s.List(context.Background(), list, client.InNamespace(ns), sel)).To(Succeed())
			g.Expect(apimetaLen(list)).To(BeZero(), "%s: %T left behind", what, list)
		}
	}).WithTimeout(90 * time.Second).WithPolling(time.Second).Should(Succeed())
}

func apimetaLen(list client.ObjectList) int {
	n, _ := apimeta.ExtractList(list)
	return len(n)
}

// waitWorkspaceReleased asserts that a finished run's PVC was deleted. Kubernetes' PVC
// protection keeps it Terminating while the run's finished pods, kept for `kubectl logs`,
// still name it; it goes with them when the run is deleted (TestDeleteInEveryPhase).
func waitWorkspaceReleased(t *testing.T, ns, name string) {
	t.Helper()
	NewWithT(t).Eventually(func() bool {
		pvc := &corev1.PersistentVolumeClaim{}
		err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name + "-ws"}, pvc)
		return apierrors.IsNotFound(err) || err == nil && pvc.DeletionTimestamp != nil
	}).WithTimeout(90*time.Second).WithPolling(time.Second).Should(BeTrue(), "workspace of %s not deleted", name)
}

func TestImagePullWatchdog(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := newNamespace(t)
	repo, srv := gitServer(t, map[string]string{"build/flow-ci.yaml": "name: Missing image\nsteps:\n- name: Pull\n  image: localhost/does-not-exist:1\n  commands:\n  - echo never\n"},
		gittest.HTTPOptions{})
	createRun(t, ns, "noimage", srv.RepoURL(repo), nil)
	run := waitFinished(t, ns, "noimage", 3*time.Minute)
	g.Expect(reason(run)).To(Equal(civ1alpha1.ReasonImagePullFailed))
	g.Expect(run.Status.Steps[0].Message).To(ContainSubstring("localhost/does-not-exist:1"))
	took := run.Status.CompletionTime.Sub(run.Status.Steps[0].StartTime.Time)
	t.Logf("ImagePullFailed %v after the step started (watchdog: 30s in the e2e overlay)", took)
	g.Expect(took).To(BeNumerically("<", 75*time.Second))
	waitWorkspaceReleased(t, ns, "noimage")
}

func TestCancelSleepingStep(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := newNamespace(t)
	repo, srv := gitServer(t, map[string]string{"build/flow-ci.yaml": sleepy}, gittest.HTTPOptions{})
	createRun(t, ns, "cancelme", srv.RepoURL(repo), nil)
	g.Eventually(func(g Gomega) {
		logs, err := kubectl("-n", ns, "logs", "job/cancelme-0-sleep")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(logs).To(ContainSubstring("started sleeping"))
	}).WithTimeout(3 * time.Minute).WithPolling(time.Second).Should(Succeed())

	out, err := kubectl("-n", ns, "patch", "fpr", "cancelme", "--type", "merge", "-p", `{"spec":{"cancel":true}}`)
	g.Expect(err).NotTo(HaveOccurred(), out)
	run := waitFinished(t, ns, "cancelme", time.Minute)
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseCancelled))
	g.Expect(run.Status.Steps[0].Phase).To(Equal(civ1alpha1.StepCancelled))
	g.Expect(run.Status.Steps[0].Message).To(ContainSubstring("+ sleep 300"), "the log tail, read from pods/log")
	g.Expect(run.Status.Steps[1].Phase).To(Equal(civ1alpha1.StepSkipped))
	g.Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "cancelme-0-sleep"}, &batchv1.Job{}))
	}).WithTimeout(time.Minute).Should(BeTrue(), "the stopped step's Job is deleted")
	waitWorkspaceReleased(t, ns, "cancelme")
}

func TestReplacePair(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := newNamespace(t)
	repo, srv := gitServer(t, map[string]string{"build/flow-ci.yaml": sleepy}, gittest.HTTPOptions{})
	createRun(t, ns, "first", srv.RepoURL(repo), nil)
	waitStep(t, ns, "first", "Sleep")
	createRun(t, ns, "second", srv.RepoURL(repo), func(r *civ1alpha1.PipelineRun) {
		r.Spec.ConcurrencyPolicy = civ1alpha1.ConcurrencyReplace
	})
	first := waitFinished(t, ns, "first", time.Minute)
	g.Expect(first.Status.Phase).To(Equal(civ1alpha1.PhaseCancelled))
	g.Expect(apimeta.FindStatusCondition(first.Status.Conditions, civ1alpha1.ConditionSucceeded).Message).
		To(Equal(`replaced by the newer run "second"`))
	waitWorkspaceReleased(t, ns, "first")
	waitStep(t, ns, "second", "Sleep")
	_, err := kubectl("-n", ns, "patch", "fpr", "second", "--type", "merge", "-p", `{"spec":{"cancel":true}}`)
	g.Expect(err).NotTo(HaveOccurred())
	waitWorkspaceReleased(t, ns, "second")
}

// TestDeleteInEveryPhase deletes runs that are queued, running, succeeded, failed and
// cancelled, and checks that the garbage collector leaves none of their Jobs, pods,
// PVCs or ConfigMaps.
func TestDeleteInEveryPhase(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := newNamespace(t)
	repo, srv := gitServer(t, map[string]string{"build/flow-ci.yaml": sleepy}, gittest.HTTPOptions{})
	ok, okSrv := gitServer(t, map[string]string{"build/flow-ci.yaml": "name: Ok\nsteps:\n- name: ok\n  commands:\n  - 'true'\n"}, gittest.HTTPOptions{})
	bad, badSrv := gitServer(t, map[string]string{"build/flow-ci.yaml": "name: Bad\nsteps:\n- name: bad\n  commands:\n  - 'false'\n"}, gittest.HTTPOptions{})
	createRun(t, ns, "running", srv.RepoURL(repo), nil)
	createRun(t, ns, "succeeded", okSrv.RepoURL(ok), nil)
	createRun(t, ns, "failed", badSrv.RepoURL(bad), nil)
	waitStep(t, ns, "running", "Sleep")
	createRun(t, ns, "cancelled", srv.RepoURL(repo), nil)
	waitStep(t, ns, "cancelled", "Sleep")
	_, err := kubectl("-n", ns, "patch", "fpr", "cancelled", "--type", "merge", "-p", `{"spec":{"cancel":true}}`)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(waitFinished(t, ns, "cancelled", time.Minute).Status.Phase).To(Equal(civ1alpha1.PhaseCancelled))
	createRun(t, ns, "queued", srv.RepoURL(repo), func(r *civ1alpha1.PipelineRun) { r.Spec.ConcurrencyPolicy = civ1alpha1.ConcurrencyQueue })
	g.Expect(waitFinished(t, ns, "succeeded", 3*time.Minute).Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded))
	g.Expect(waitFinished(t, ns, "failed", 3*time.Minute).Status.Phase).To(Equal(civ1alpha1.PhaseFailed))
	g.Eventually(func(g Gomega) {
		g.Expect(getRun(g, ns, "queued").Status.Phase).To(Equal(civ1alpha1.PhaseQueued))
	}).WithTimeout(time.Minute).Should(Succeed())

	for _, name := range []string{"queued", "running", "succeeded", "failed", "cancelled"} {
		run := getRun(g, ns, name)
		g.Expect(k8s.Delete(context.Background(), run)).To(Succeed())
		noLeftovers(t, ns, string(run.UID), "deleted "+strings.ToLower(string(run.Status.Phase))+" run")
	}
	out, err := kubectl("-n", ns, "get", "jobs,pods,pvc", "-o", "name")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(strings.TrimSpace(out)).To(BeEmpty())
}
