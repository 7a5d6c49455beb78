package main

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
)

// --release-all, the step before uninstalling the archive, removes the archive's
// finalizer from every run in every namespace, and only that finalizer.
func TestReleaseAll(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	var runs []*civ1alpha1.PipelineRun
	for i, fin := range [][]string{
		{civ1alpha1.FinalizerArchive},
		{civ1alpha1.FinalizerArchive, "example.com/keep"},
		{"example.com/keep"},
	} {
		run := &civ1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: env.NewNamespace(t), Name: "r",
			Finalizers: fin}, Spec: civ1alpha1.PipelineRunSpec{RepoURL: "https://git.example/app.git"}}
		g.Expect(env.Client.Create(ctx, run)).To(Succeed(), "run %d", i)
		runs = append(runs, run)
	}
	g.Expect(releaseAll(ctx, env.Config, env.Scheme)).To(Succeed())
	want := [][]string{nil, {"example.com/keep"}, {"example.com/keep"}}
	for i, run := range runs {
		got := &civ1alpha1.PipelineRun{}
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(run), got)).To(Succeed())
		g.Expect(got.Finalizers).To(Equal(want[i]), "run %d", i)
		got.Finalizers = nil
		g.Expect(env.Client.Update(ctx, got)).To(Succeed())
	}
}
