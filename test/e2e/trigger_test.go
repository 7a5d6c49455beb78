//go:build e2e

package e2e

import (
	"context"
	"strings"
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

// TestTriggerWithForge: a real Gitea on this machine's side of the cluster bridge holds
// the repository. A PipelineTrigger applied to the cluster polls it, builds the head it
// finds and each pushed commit, once, and the deployed operator posts each run's commit
// status to Gitea: pending, then success, or failure for a failing commit. Deleting the
// trigger deletes its runs.
func TestTriggerWithForge(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	gitea := forgetest.StartGitea(t, gitHost)
	repoURL := gitea.CreateRepo(t, "app")
	local := gittest.NewRepo(t, map[string]string{"build/flow-ci.yaml": "name: app\nsteps:\n" +
		"- name: test\n  commands:\n  - echo testing \"$FLOWCI_COMMIT\"\n"})
	c1 := local.RevParse(t, "main")
	gitea.Push(t, local.Path, "app", "main")

	token := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "forge"}, StringData: map[string]string{"token": gitea.Token}}
	g.Expect(k8s.Create(ctx, token)).To(Succeed())
	interval := 10 * time.Second
	tr := &civ1alpha1.PipelineTrigger{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}, Spec: civ1alpha1.PipelineTriggerSpec{
		RepoURL: repoURL, Branches: []string{"main"}, Interval: &metav1.Duration{Duration: interval},
		Report: &civ1alpha1.CommitStatusReport{Provider: "gitea", URL: gitea.URL, SecretRef: civ1alpha1.SecretReference{Name: "forge"}},
	}}
	g.Expect(k8s.Create(ctx, tr)).To(Succeed())

	runFor := func(g Gomega, commit string) *civ1alpha1.PipelineRun {
		list := &civ1alpha1.PipelineRunList{}
		g.Expect(k8s.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{civ1alpha1.LabelCommit: commit})).To(Succeed())
		g.Expect(list.Items).To(HaveLen(1), "exactly one run of %s", commit)
		return &list.Items[0]
	}
	states := func(g Gomega, commit string) []string {
		var out []string
		for _, s := range gitea.Statuses(t, "app", commit) {
			g.Expect(s.Context).To(Equal("flow-ci/app"))
			out = append(out, s.State)
		}
		return out
	}
	g.Eventually(func(g Gomega) {
		g.Expect(runFor(g, c1).Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded))
		g.Expect(states(g, c1)).To(Equal([]string{"pending", "success"}))
	}).WithTimeout(3 * time.Minute).WithPolling(time.Second).Should(Succeed())

	// A failing commit, pushed: a run within one interval (plus its jitter), failure on Gitea.
	c2 := local.Commit(t, map[string]string{"build/flow-ci.yaml": "name: app\nsteps:\n- name: test\n  commands:\n  - echo failing\n  - exit 3\n"})
	pushed := time.Now()
	gitea.Push(t, local.Path, "app", "main")
	var seen time.Duration
	g.Eventually(func(g Gomega) {
		runFor(g, c2)
		seen = time.Since(pushed)
	}).WithTimeout(interval + interval/10 + 15*time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
	t.Logf("push to run created: %.1fs (interval %s)", seen.Seconds(), interval)
	g.Eventually(func(g Gomega) {
		run := runFor(g, c2)
		g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseFailed))
		g.Expect(states(g, c2)).To(Equal([]string{"pending", "failure"}))
	}).WithTimeout(3 * time.Minute).WithPolling(time.Second).Should(Succeed())

	g.Eventually(func(g Gomega) {
		cur := &civ1alpha1.PipelineTrigger{}
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(tr), cur)).To(Succeed())
		g.Expect(cur.Status.LastRunPhase).To(Equal(civ1alpha1.PhaseFailed))
	}).WithTimeout(30 * time.Second).Should(Succeed())
	table, err := kubectl("-n", ns, "get", "fpt", "-o", "wide")
	g.Expect(err).NotTo(HaveOccurred())
	t.Logf("kubectl get fpt -o wide:\n%s", table)
	header := strings.Fields(strings.SplitN(table, "\n", 2)[0])
	g.Expect(header).To(Equal([]string{"NAME", "REPO", "BRANCHES", "LAST", "COMMIT", "LAST", "RUN", "PHASE", "AGE", "READY"}))
	g.Expect(table).To(ContainSubstring(c2[:7]))
	g.Expect(table).To(ContainSubstring("Failed"))
	g.Expect(operatorLogs(t)).NotTo(ContainSubstring(gitea.Token))

	// Deleting the trigger deletes its runs (owner references, the garbage collector).
	g.Expect(k8s.Delete(ctx, tr, client.PropagationPolicy(metav1.DeletePropagationBackground))).To(Succeed())
	g.Eventually(func(g Gomega) {
		list := &civ1alpha1.PipelineRunList{}
		g.Expect(k8s.List(ctx, list, client.InNamespace(ns))).To(Succeed())
		g.Expect(list.Items).To(BeEmpty())
	}).WithTimeout(2 * time.Minute).WithPolling(time.Second).Should(Succeed())
}
