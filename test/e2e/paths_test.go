//go:build e2e

package e2e

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/forgetest"
	"github.com/flow-ci/flow-ci/internal/gittest"
)

const monorepoFile = `name: mono
steps:
- name: api
  dependsOn: []
  when: {changes: ["api/**"]}
  commands: [echo building api]
- name: web
  dependsOn: []
  when: {changes: ["web/**"]}
  commands: [echo building web]
`

// TestPathFiltersOnGitea: a trigger with ignorePaths [docs/**] on a real Gitea builds
// the first head, starts no run for a push that changed only docs/, and builds the next
// push, in which a step whose when.changes matches nothing changed since the last
// successful build is skipped, and the other runs.
func TestPathFiltersOnGitea(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	gitea := forgetest.StartGitea(t, gitHost)
	repoURL := gitea.CreateRepo(t, "mono")
	local := gittest.NewRepo(t, map[string]string{"build/flow-ci.yaml": monorepoFile, "api/main.go": "v1\n", "web/index.html": "v1\n"})
	pushAll := func() { gitea.Push(t, local.Path, "mono", "main") }
	c1 := local.RevParse(t, "main")
	pushAll()
	interval := 10 * time.Second
	tr := &civ1alpha1.PipelineTrigger{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mono"}, Spec: civ1alpha1.PipelineTriggerSpec{
		RepoURL: repoURL, Branches: []string{"main"}, Interval: &metav1.Duration{Duration: interval}, IgnorePaths: []string{"docs/**"},
	}}
	g.Expect(k8s.Create(ctx, tr)).To(Succeed())
	runFor := func(g Gomega, commit string) *civ1alpha1.PipelineRun {
		list := &civ1alpha1.PipelineRunList{}
		g.Expect(k8s.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{civ1alpha1.LabelCommit: commit})).To(Succeed())
		g.Expect(list.Items).To(HaveLen(1), "exactly one run of %s", commit)
		return &list.Items[0]
	}
	g.Eventually(func(g Gomega) {
		run := runFor(g, c1)
		g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded))
		for _, s := range run.Status.Steps {
			g.Expect(s.Phase).To(Equal(civ1alpha1.StepSucceeded), "a first build has no base: every step runs")
		}
	}).WithTimeout(3 * time.Minute).WithPolling(time.Second).Should(Succeed())
	g.Eventually(func(g Gomega) {
		cur := &civ1alpha1.PipelineTrigger{}
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(tr), cur)).To(Succeed())
		g.Expect(cur.Status.Branches).To(ContainElement(HaveField("LastSucceededCommit", c1)))
	}).WithTimeout(time.Minute).Should(Succeed())

	c2 := local.Commit(t, map[string]string{"docs/guide.md": "how to\n"})
	pushAll()
	g.Eventually(func(g Gomega) {
		events := &corev1.EventList{}
		g.Expect(k8s.List(ctx, events, client.InNamespace(ns))).To(Succeed())
		g.Expect(events.Items).To(ContainElement(And(HaveField("Reason", civ1alpha1.EventHeadSkipped),
			HaveField("Message", ContainSubstring(c2[:7])))))
	}).WithTimeout(interval + interval/10 + 30*time.Second).WithPolling(time.Second).Should(Succeed())
	list := &civ1alpha1.PipelineRunList{}
	g.Expect(k8s.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{civ1alpha1.LabelCommit: c2})).To(Succeed())
	g.Expect(list.Items).To(BeEmpty(), "a push that changed only docs/** starts no run")

	c3 := local.Commit(t, map[string]string{"web/index.html": "v2\n"})
	pushAll()
	g.Eventually(func(g Gomega) {
		run := runFor(g, c3)
		g.Expect(run.Annotations).To(HaveKeyWithValue(civ1alpha1.AnnotationChangesBase, c1))
		g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded))
		g.Expect(run.Status.Steps[0].Phase).To(Equal(civ1alpha1.StepSkipped), "api did not change")
		g.Expect(run.Status.Steps[0].Message).To(ContainSubstring("when.changes"))
		g.Expect(run.Status.Steps[1].Phase).To(Equal(civ1alpha1.StepSucceeded), "web changed")
	}).WithTimeout(3 * time.Minute).WithPolling(time.Second).Should(Succeed())
}
