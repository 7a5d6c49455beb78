package trigger

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers/sources"
	"github.com/flow-ci/flow-ci/internal/forgetest"
	"github.com/flow-ci/flow-ci/internal/gittest"
)

// TestPullRequests on a real Gitea: the repository's own pull request is built at once,
// trusted (the Secrets its template lists for pull_request); a fork's waits until its
// exact head is approved, is then built without Secrets or ServiceAccount, and a push
// after the approval waits again; one that changed only ignored paths since its merge
// base is not built; closing a pull request cancels its active run.
func TestPullRequests(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := env.NewNamespace(t)
	gitea := forgetest.StartGitea(t, "127.0.0.1")
	repoURL := gitea.CreateRepo(t, "app")
	local := gittest.NewRepo(t, map[string]string{"build/flow-ci.yaml": pipelineFile})
	gitea.Push(t, local.Path, "app", "main")
	own := gitea.PushTo(t, forgetest.User, "app", "feature", map[string]string{"a.txt": "mine\n"})
	mallory := gitea.AddUser(t, "mallory")
	gitea.Fork(t, "app", mallory)
	forked := gitea.PushTo(t, "mallory", "app", "patch", map[string]string{"evil.sh": "env\n"})
	docs := gitea.PushTo(t, forgetest.User, "app", "docs", map[string]string{"docs/guide.md": "how\n"})
	ownPR := gitea.OpenPull(t, "app", "feature", "main", gitea.Token)
	docsPR := gitea.OpenPull(t, "app", "docs", "main", gitea.Token)
	forkPR := gitea.OpenPull(t, "app", "mallory:patch", "main", mallory)

	token := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "forge"}, StringData: map[string]string{sources.TokenKey: gitea.Token}}
	g.Expect(env.Client.Create(ctx, token)).To(Succeed())
	startManager(t, ns)
	tr := newTrigger(ns, "app", repoURL)
	tr.Spec.Branches = nil
	tr.Spec.PullRequests = &civ1alpha1.PullRequestTrigger{Targets: []string{"main"}}
	tr.Spec.Report = &civ1alpha1.CommitStatusReport{Provider: "gitea", URL: gitea.URL, SecretRef: civ1alpha1.SecretReference{Name: "forge"}}
	tr.Spec.Template.ServiceAccountName = "deployer"
	tr.Spec.IgnorePaths = []string{"docs/**"}
	tr.Spec.Template.Secrets = []civ1alpha1.TriggerSecret{
		{Name: "test-db", Events: []civ1alpha1.Event{civ1alpha1.EventPullRequest}},
		{Name: "deploy-token", Branches: []string{"main"}, Events: []civ1alpha1.Event{civ1alpha1.EventPush}},
	}
	create(t, tr)

	runOf := func(g Gomega, head string) *civ1alpha1.PipelineRun {
		for _, r := range runs(g, ns) {
			if r.Spec.Revision == head {
				return &r
			}
		}
		return nil
	}
	g.Eventually(func(g Gomega) { g.Expect(runOf(g, own)).NotTo(BeNil()) }).WithTimeout(30 * time.Second).Should(Succeed())
	ownRun := runOf(g, own)
	g.Expect(ownRun.Labels).To(HaveKeyWithValue(civ1alpha1.LabelPullRequest, itoa(ownPR)))
	g.Expect(civ1alpha1.EventOf(ownRun)).To(Equal(civ1alpha1.EventPullRequest))
	g.Expect(ownRun.Spec.Branch).To(Equal("main"), "built for its target")
	g.Expect(ownRun.Spec.SecretNames()).To(Equal([]string{"test-db"}), "trusted: the Secrets listed for pull_request only")
	g.Expect(ownRun.Spec.ServiceAccountName).To(BeEmpty(), "no pull request's run gets the ServiceAccount")

	waiting := func(g Gomega, number int) string {
		for _, ps := range getTrigger(g, ns, "app").Status.PullRequests {
			if int(ps.Number) == number {
				return ps.Waiting
			}
		}
		return "not tracked"
	}
	g.Eventually(func(g Gomega) {
		g.Expect(waiting(g, forkPR)).To(ContainSubstring("waiting for someone to approve head " + forked[:7]))
	}).
		WithTimeout(30 * time.Second).Should(Succeed())
	g.Expect(runOf(g, forked)).To(BeNil(), "a fork's head runs only once approved")
	g.Expect(waiting(g, docsPR)).To(ContainSubstring("path filters"), "a pull request that changed only docs/** since its merge base")
	g.Expect(runOf(g, docs)).To(BeNil())

	approve := func(head string) {
		g.Eventually(func() error {
			cur := getTrigger(g, ns, "app")
			cur.Annotations = map[string]string{civ1alpha1.AnnotationApprovePrefix + itoa(forkPR): head}
			return env.Client.Update(ctx, cur)
		}).Should(Succeed())
	}
	approve(forked)
	pokeAndWait(t, ns, "app")
	g.Eventually(func(g Gomega) { g.Expect(runOf(g, forked)).NotTo(BeNil()) }).WithTimeout(30 * time.Second).Should(Succeed())
	forkRun := runOf(g, forked)
	g.Expect(forkRun.Spec.Secrets).To(BeEmpty(), "a fork's run gets no Secret, whatever the template says")
	g.Expect(forkRun.Spec.ServiceAccountName).To(BeEmpty(), "nor a ServiceAccount")
	g.Expect(forkRun.Labels).To(HaveKeyWithValue(civ1alpha1.LabelUntrusted, "true"))

	again := gitea.PushTo(t, "mallory", "app", "patch", map[string]string{"evil.sh": "env; cat /var/run/secrets/*\n"})
	pokeAndWait(t, ns, "app")
	g.Eventually(func(g Gomega) { g.Expect(waiting(g, forkPR)).To(ContainSubstring("not the new head " + again[:7])) }).
		WithTimeout(30 * time.Second).Should(Succeed())
	g.Expect(runOf(g, again)).To(BeNil(), "an approval covers one head: the push after it waits")

	gitea.ClosePull(t, "app", ownPR)
	pokeAndWait(t, ns, "app")
	g.Eventually(func(g Gomega) {
		cur := &civ1alpha1.PipelineRun{}
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(ownRun), cur)).To(Succeed())
		g.Expect(cur.Spec.Cancel).To(BeTrue(), "a closed pull request's active run is cancelled")
	}).WithTimeout(30 * time.Second).Should(Succeed())
	g.Expect(waiting(g, ownPR)).To(Equal("not tracked"))
}

func itoa(n int) string { return fmt.Sprint(n) }
