package pipelinerun

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/jobtest"
	"github.com/flow-ci/flow-ci/internal/render"
)

// podReads counts the operator's reads of an ended Job's pods: lists selected by a
// Job's controller-uid (the informers select on the run UID, not on a Job).
type podReads struct {
	next http.RoundTripper
	n    atomic.Int64
}

func (c *podReads) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/pods") &&
		strings.Contains(req.URL.Query().Get("labelSelector"), batchv1.ControllerUidLabel) {
		c.n.Add(1)
	}
	return c.next.RoundTrip(req)
}

func countingPodReads(reads *podReads) *rest.Config {
	cfg := rest.CopyConfig(env.Config)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { reads.next = rt; return reads })
	return cfg
}

// TestSucceededPodsAreNotReadBack: a run whose clone and steps succeed reads no pod
// back from the API server: its steps are pinned to the clone's node as its pod left
// the cache, and each succeeded step exited 0. A failed step's pod is read once, for
// its exit code and message.
func TestSucceededPodsAreNotReadBack(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, twoSteps)
	reads := &podReads{}
	startManagerAs(t, ns, countingPodReads(reads))
	first := startFirstStep(t, ns, "quiet", url, nil)
	g.Expect(render.PinnedNode(first)).To(Equal("node-a"), "pinned where the clone ran")
	completeJob(t, first, "node-a")
	run := pinnedRun(t, ns, "quiet")
	second := waitJob(t, ns, stepJobName(run, 1))
	g.Expect(render.PinnedNode(second)).To(Equal("node-a"))
	failJob(t, second, "node-a", 3, "boom")
	done := waitFinished(t, ns, "quiet")
	g.Expect(done.Status.Phase).To(Equal(civ1alpha1.PhaseFailed))
	g.Expect(done.Status.Steps[0].ExitCode).To(HaveValue(BeEquivalentTo(0)))
	g.Expect(done.Status.Steps[1].ExitCode).To(HaveValue(BeEquivalentTo(3)), "read from the failed pod")
	g.Expect(done.Status.Steps[1].Message).To(Equal("boom"))
	g.Expect(reads.n.Load()).To(BeEquivalentTo(1), "only the failed step's pod was read")
}

// TestCloneNodeAfterARestart: a clone that ended while no operator ran left no trace
// in memory; the restarted operator reads the clone's pods and pins the steps to its
// node all the same.
func TestCloneNodeAfterARestart(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, twoSteps)
	stop := startManager(t, ns)
	createRun(t, newRunObject(ns, "restarted", url))
	clone := waitJob(t, ns, "restarted-clone")
	g.Eventually(func(g Gomega) {
		g.Expect(getRun(g, ns, "restarted").Status.Phase).To(Equal(civ1alpha1.PhaseRunning))
	}).Should(Succeed())
	stop()
	completeJob(t, clone, "node-b")
	reads := &podReads{}
	startManagerAs(t, ns, countingPodReads(reads))
	first := waitJob(t, ns, stepJobName(pinnedRun(t, ns, "restarted"), 0))
	g.Expect(render.PinnedNode(first)).To(Equal("node-b"))
	g.Expect(reads.n.Load()).To(BeEquivalentTo(1), "the clone's pods, read once")
}

// TestClonePodsThatPinNothing: after the clone pod finished on node-a, two pods leave
// the cache from other nodes: one a namespace member labelled like the clone's,
// controlled by a "Job" of the clone's name but not its UID, which finishes; and an
// attempt of the clone Job itself that was deleted. Neither is where the steps go.
func TestClonePodsThatPinNothing(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, twoSteps)
	startManager(t, ns)
	createRun(t, newRunObject(ns, "pinned", url))
	clone := waitJob(t, ns, "pinned-clone")
	finishPod(t, clone, "node-a", 0, "")
	ctx := context.Background()
	forged := jobtest.PodFor(clone)
	forged.Name, forged.Spec.NodeName = "forged-clone", "node-evil"
	forged.OwnerReferences[0].UID = "not-the-clone-job"
	g.Expect(env.Client.Create(ctx, forged)).To(Succeed())
	forged.Status = corev1.PodStatus{Phase: corev1.PodSucceeded}
	g.Expect(env.Client.Status().Update(ctx, forged)).To(Succeed())
	replaced := jobtest.PodFor(clone)
	replaced.Name, replaced.Spec.NodeName = "replaced-clone", "node-gone"
	g.Expect(env.Client.Create(ctx, replaced)).To(Succeed())
	g.Expect(env.Client.Delete(ctx, replaced, client.GracePeriodSeconds(0))).To(Succeed())
	afterASecond() // their events reach the operator
	setJobOutcome(t, clone, batchv1.JobComplete, "")
	first := waitJob(t, ns, stepJobName(pinnedRun(t, ns, "pinned"), 0))
	g.Expect(render.PinnedNode(first)).To(Equal("node-a"))
}
