package trigger

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gittest"
)

// TestPathFilters on a real git server: a trigger with ignorePaths [docs/**] builds a
// branch's first head (nothing to compare with), skips a later head that changed only
// docs (with an event that says why), and builds the next head that changed code,
// compared with the last successful build, which its run carries for when.changes.
func TestPathFilters(t *testing.T) {
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	repo := gittest.NewRepo(t, map[string]string{"build/flow-ci.yaml": pipelineFile, "src/app.go": "v1\n"})
	repo.SetConfig(t, "uploadpack.allowFilter", "true")
	url := gittest.NewHTTPServer(t, repo.Root, gittest.HTTPOptions{}).RepoURL(repo)
	c1 := repo.RevParse(t, "main")
	startManager(t, ns)
	tr := newTrigger(ns, "app", url, "main")
	tr.Spec.IgnorePaths = []string{"docs/**"}
	create(t, tr)

	g.Eventually(func(g Gomega) { g.Expect(commits(g, ns)).To(Equal([]string{ref("main", c1)})) }).WithTimeout(30 * time.Second).Should(Succeed())
	first := runs(g, ns)[0]
	g.Expect(first.Annotations).NotTo(HaveKey(civ1alpha1.AnnotationChangesBase), "a first build has no base")
	endRun(t, ns, first.Name, civ1alpha1.PhaseSucceeded)
	g.Eventually(func(g Gomega) {
		g.Expect(branchStatus(getTrigger(g, ns, "app"), "main").LastSucceededCommit).To(Equal(c1))
	}).WithTimeout(30 * time.Second).Should(Succeed())

	c2 := repo.Commit(t, map[string]string{"docs/guide.md": "how\n", "docs/img/a.txt": "x\n"})
	after := pokeAndWait(t, ns, "app")
	g.Expect(commits(g, ns)).To(HaveLen(1), "a head that changed only docs/** starts no run")
	g.Expect(branchStatus(after, "main").Commit).To(Equal(c2), "the skipped head is seen, so it is not looked at again")
	g.Eventually(func(g Gomega) {
		events := &corev1.EventList{}
		g.Expect(env.Client.List(context.Background(), events, client.InNamespace(ns))).To(Succeed())
		var msgs []string
		for _, e := range events.Items {
			if e.Reason == civ1alpha1.EventHeadSkipped {
				msgs = append(msgs, e.Message)
			}
		}
		g.Expect(strings.Join(msgs, "\n")).To(ContainSubstring("every changed file matches ignorePaths [docs/**] since " + c1[:7]))
	}).WithTimeout(10 * time.Second).Should(Succeed())

	c3 := repo.Commit(t, map[string]string{"src/app.go": "v2\n"})
	pokeAndWait(t, ns, "app")
	g.Expect(commits(g, ns)).To(ConsistOf(ref("main", c1), ref("main", c3)))
	for _, r := range runs(g, ns) {
		if r.Labels[civ1alpha1.LabelCommit] == c3 {
			g.Expect(r.Annotations).To(HaveKeyWithValue(civ1alpha1.AnnotationChangesBase, c1),
				"compared with the last successful build, so the skipped docs change counts too")
		}
	}

	bad := newTrigger(ns, "bad", url, "main")
	bad.Spec.Paths = []string{"/src/**"}
	create(t, bad)
	waitNotReady(t, ns, "bad", civ1alpha1.ReasonInvalidSpec)
}
