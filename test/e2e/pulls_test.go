//go:build e2e

package e2e

import (
	"context"
	"strconv"
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

const prPipeline = `name: pr
steps:
- name: test
  commands:
  - echo testing
  - test ! -e /var/run/secrets/kubernetes.io/serviceaccount/token
- name: deploy
  when: {event: push}
  secrets: [{name: deploy-token, env: {DEPLOY_TOKEN: token}}]
  commands: [echo "deploying with $DEPLOY_TOKEN"]
`

// A fork's "pwn request": its pipeline file asks for the deploy token.
const stealPipeline = `name: pr
steps:
- name: steal
  secrets: [{name: deploy-token, env: {T: token}}]
  commands: [echo "$T" | base64]
`

// TestPullRequestsOnGitea: a real Gitea, a second user who forks the repository. The
// repository's own pull request runs at once and reports success on its head; the
// fork's runs only once its head is approved (flowci approve), reports on that head,
// and its pipeline file, which asks for the deploy token, fails without it; a push to
// the fork after the approval starts nothing until approved again.
func TestPullRequestsOnGitea(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	gitea := forgetest.StartGitea(t, gitHost)
	repoURL := gitea.CreateRepo(t, "app")
	local := gittest.NewRepo(t, map[string]string{"build/flow-ci.yaml": prPipeline})
	gitea.Push(t, local.Path, "app", "main")
	deployToken := randomHex(12)
	for name, value := range map[string]string{"forge": gitea.Token, "deploy-token": deployToken} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: map[string]string{"token": value}}
		g.Expect(k8s.Create(ctx, s)).To(Succeed())
	}
	interval := 10 * time.Second
	tr := &civ1alpha1.PipelineTrigger{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}, Spec: civ1alpha1.PipelineTriggerSpec{
		RepoURL: repoURL, Interval: &metav1.Duration{Duration: interval},
		PullRequests: &civ1alpha1.PullRequestTrigger{Targets: []string{"main"}},
		Report:       &civ1alpha1.CommitStatusReport{Provider: "gitea", URL: gitea.URL, SecretRef: civ1alpha1.SecretReference{Name: "forge"}},
		Template: civ1alpha1.PipelineRunTemplate{Secrets: []civ1alpha1.TriggerSecret{
			{Name: "deploy-token", Branches: []string{"main"}, Events: []civ1alpha1.Event{civ1alpha1.EventPush}}}},
	}}
	g.Expect(k8s.Create(ctx, tr)).To(Succeed())

	own := gitea.PushTo(t, forgetest.User, "app", "feature", map[string]string{"a.txt": "mine\n"})
	gitea.OpenPull(t, "app", "feature", "main", gitea.Token)
	mallory := gitea.AddUser(t, "mallory")
	gitea.Fork(t, "app", mallory)
	forked := gitea.PushTo(t, "mallory", "app", "patch", map[string]string{"build/flow-ci.yaml": stealPipeline})
	forkPR := gitea.OpenPull(t, "app", "mallory:patch", "main", mallory)

	runFor := func(g Gomega, commit string) *civ1alpha1.PipelineRun {
		list := &civ1alpha1.PipelineRunList{}
		g.Expect(k8s.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{civ1alpha1.LabelCommit: commit})).To(Succeed())
		g.Expect(list.Items).To(HaveLen(1), "exactly one run of %s", commit)
		return &list.Items[0]
	}
	states := func(commit string) []string {
		var out []string
		for _, s := range gitea.Statuses(t, "app", commit) {
			out = append(out, s.State)
		}
		return out
	}
	g.Eventually(func(g Gomega) {
		run := runFor(g, own)
		g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded), toJSON(run.Status))
		g.Expect(run.Status.Steps[1].Reason).To(Equal(civ1alpha1.ReasonWhenFalse), "deploy runs on pushes only")
		g.Expect(states(own)).To(Equal([]string{"pending", "success"}))
	}).WithTimeout(3 * time.Minute).WithPolling(time.Second).Should(Succeed())

	// The fork waits: no run for its head, through two polls.
	g.Consistently(func(g Gomega) {
		list := &civ1alpha1.PipelineRunList{}
		g.Expect(k8s.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{civ1alpha1.LabelCommit: forked})).To(Succeed())
		g.Expect(list.Items).To(BeEmpty())
	}).WithTimeout(2 * interval).Should(Succeed())
	code, out := cli(t, flowciBinary(t), root, "approve", "app", strconv.Itoa(forkPR), "-n", ns)
	g.Expect(code).To(Equal(0), out)
	g.Expect(out).To(ContainSubstring("approved pull request " + strconv.Itoa(forkPR) + " of trigger app at " + forked[:7]))
	g.Eventually(func(g Gomega) {
		run := runFor(g, forked)
		g.Expect(run.Spec.Secrets).To(BeEmpty())
		g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseFailed))
		g.Expect(run.Status.Steps[0].Reason).To(Equal(civ1alpha1.ReasonSecretNotExposed), "the fork's file asks for the token and does not get it")
		g.Expect(states(forked)).To(Equal([]string{"pending", "failure"}))
		g.Expect(toJSON(run)).NotTo(ContainSubstring(deployToken))
	}).WithTimeout(3 * time.Minute).WithPolling(time.Second).Should(Succeed())

	again := gitea.PushTo(t, "mallory", "app", "patch", map[string]string{"more.txt": "x\n"})
	g.Eventually(func(g Gomega) {
		cur := &civ1alpha1.PipelineTrigger{}
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(tr), cur)).To(Succeed())
		var waiting []string
		for _, ps := range cur.Status.PullRequests {
			waiting = append(waiting, ps.Waiting)
		}
		g.Expect(strings.Join(waiting, "\n")).To(ContainSubstring("not the new head " + again[:7]))
	}).WithTimeout(interval + interval/10 + 30*time.Second).WithPolling(time.Second).Should(Succeed())
	list := &civ1alpha1.PipelineRunList{}
	g.Expect(k8s.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{civ1alpha1.LabelCommit: again})).To(Succeed())
	g.Expect(list.Items).To(BeEmpty(), "an approval covers one head")
}
