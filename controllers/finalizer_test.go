package controllers

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// SetFinalizer writes only when it changes something, and a stale copy conflicts
// instead of dropping a finalizer another writer added.
func TestSetFinalizer(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := env.NewNamespace(t)
	run := &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "held"},
		Spec: v1alpha1.PipelineRunSpec{RepoURL: "https://git.example/org/app.git"}}
	g.Expect(env.Client.Create(ctx, run)).To(Succeed())
	stale := run.DeepCopy()

	for _, c := range []struct {
		on, changed bool
	}{{true, true}, {true, false}, {false, true}, {false, false}, {true, true}} {
		changed, err := SetFinalizer(ctx, env.Client, run, v1alpha1.FinalizerArchive, c.on)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(changed).To(Equal(c.changed), "on=%v", c.on)
		got := &v1alpha1.PipelineRun{}
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(run), got)).To(Succeed())
		g.Expect(got.Finalizers).To(Equal(run.Finalizers))
		g.Expect(got.Finalizers).To(Or(BeEmpty(), Equal([]string{v1alpha1.FinalizerArchive})))
		g.Expect(len(got.Finalizers) == 1).To(Equal(c.on))
	}

	// A copy read before the last write is refused: its patch would set the whole list
	// to the copy's, dropping what that write added.
	stale.Finalizers = []string{"example.com/other"}
	_, err := SetFinalizer(ctx, env.Client, stale, v1alpha1.FinalizerArchive, true)
	g.Expect(apierrors.IsConflict(err)).To(BeTrue(), "%v", err)
	got := &v1alpha1.PipelineRun{}
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(run), got)).To(Succeed())
	g.Expect(got.Finalizers).To(Equal([]string{v1alpha1.FinalizerArchive}))
	// A deleted run waits for it, then goes once it is removed.
	g.Expect(env.Client.Delete(ctx, got)).To(Succeed())
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(run), got)).To(Succeed())
	_, err = SetFinalizer(ctx, env.Client, got, v1alpha1.FinalizerArchive, false)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(apierrors.IsNotFound(env.Client.Get(ctx, client.ObjectKeyFromObject(run), got))).To(BeTrue())
}
