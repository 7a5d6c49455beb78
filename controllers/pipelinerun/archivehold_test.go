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
