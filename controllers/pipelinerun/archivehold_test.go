package pipelinerun

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
)

// A deleted run that still carries the archive's finalizer (the archive is down, or
// was uninstalled without releasing it) goes after --archive-hold-max, with an event;
// another finalizer is left alone.
func TestArchiveHoldIsBoundedByTheOperator(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := env.NewNamespace(t)
	startManager(t, ns, func(r *Reconciler) { r.Lifecycle.ArchiveHoldMax = 2 * time.Second })
	run := newRunObject(ns, "held", "https://git.example/app.git")
	run.Finalizers = []string{civ1alpha1.FinalizerArchive, "example.com/other"}
	createRun(t, run)
	g.Expect(env.Client.Delete(ctx, run)).To(Succeed())
	g.Consistently(func(g Gomega) {
		g.Expect(getRun(g, ns, "held").Finalizers).To(ContainElement(civ1alpha1.FinalizerArchive))
	}).WithTimeout(time.Second).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(getRun(g, ns, "held").Finalizers).To(Equal([]string{"example.com/other"}))
	}).WithTimeout(10 * time.Second).Should(Succeed())
	g.Eventually(func() []string { return eventReasons(t, ns) }).Should(ContainElement("Warning/" + ReasonArchiveHoldExpired))

	// Its other owner lets it go; the run is gone.
	got := getRun(g, ns, "held")
	got.Finalizers = nil
	g.Expect(env.Client.Update(ctx, got)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(env.Client.Get(ctx, client.ObjectKeyFromObject(run), &civ1alpha1.PipelineRun{}))
	}).Should(BeTrue())
}

// A running run that is deleted while the archive holds it has its active Jobs stopped
// at once, so that their logs end and the archive can let it go.
func TestDeletedHeldRunStopsItsJobs(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, threeSteps)
	startManager(t, ns)
	run := newRunObject(ns, "stopped", url)
	run.Finalizers = []string{civ1alpha1.FinalizerArchive}
	createRun(t, run)
	job := waitJob(t, ns, "stopped-clone")
	g.Expect(env.Client.Delete(ctx, run)).To(Succeed())
	g.Eventually(func() bool {
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(job), job)
		return apierrors.IsNotFound(err) || err == nil && !job.DeletionTimestamp.IsZero()
	}).WithTimeout(10*time.Second).Should(BeTrue(), "the clone Job is stopped")
	g.Expect(getRun(g, ns, "stopped").Finalizers).To(ContainElement(civ1alpha1.FinalizerArchive), "the run waits for the archive")
	got := getRun(g, ns, "stopped")
	got.Finalizers = nil
	g.Expect(env.Client.Update(ctx, got)).To(Succeed())
}
