//go:build e2e

package e2e

import (
	"context"
	"os/exec"
	"regexp"
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

// resumePipeline fails at its third step the first time: the step leaves a marker in
// the workspace, which the resumed run finds.
const resumePipeline = `name: Resume
steps:
- name: one
  commands: [echo one > one.txt]
- name: two
  commands: [echo two > two.txt]
- name: three
  commands:
  - cat one.txt two.txt
  - if [ ! -f fixed ]; then touch fixed; echo three fails the first time; exit 1; fi
  - echo three passed
- name: four
  commands: [echo four]
finally:
- name: report
  commands: [ls]
`

// TestResumeOnTheCluster: a run that fails at its third step, resumed with flowci
// resume, runs only that step, its dependent and the finally step, in the workspace the
// failed run kept: the third step reads what the first two wrote there.
func TestResumeOnTheCluster(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := newNamespace(t)
	repo, srv := gitServer(t, map[string]string{"build/flow-ci.yaml": resumePipeline}, gittest.HTTPOptions{})
	createRun(t, ns, "first", srv.RepoURL(repo), func(r *civ1alpha1.PipelineRun) {
		r.Spec.Workspace.RetainOnFailure = &metav1.Duration{Duration: 10 * time.Minute}
	})
	first := waitFinished(t, ns, "first", 5*time.Minute)
	g.Expect(first.Status.Phase).To(Equal(civ1alpha1.PhaseFailed), toJSON(first.Status))
	g.Expect(first.Status.Steps[2].Reason).To(Equal(civ1alpha1.ReasonStepFailed))

	out, err := exec.Command(flowciBinary(t), "-n", ns, "resume", "first").CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), string(out))
	m := regexp.MustCompile(`pipelinerun/(\S+) created \(resumes first\)`).FindStringSubmatch(string(out))
	g.Expect(m).NotTo(BeNil(), string(out))
	run := waitFinished(t, ns, m[1], 5*time.Minute)
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded), toJSON(run.Status))
	for i, want := range []civ1alpha1.StepPhase{civ1alpha1.StepSkipped, civ1alpha1.StepSkipped, civ1alpha1.StepSucceeded,
		civ1alpha1.StepSucceeded, civ1alpha1.StepSucceeded} {
		g.Expect(run.Status.Steps[i].Phase).To(Equal(want), run.Status.Steps[i].Name)
	}
	g.Expect(run.Status.Steps[0].Reason).To(Equal(civ1alpha1.ReasonReused))
	g.Expect(run.Status.Steps[0].JobName).To(BeEmpty(), "a reused step has no Job")
	logs, err := kubectl("-n", ns, "logs", "job/"+run.Status.Steps[2].JobName)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(logs).To(ContainSubstring("one\ntwo\n"), "what the first run's steps wrote")
	g.Expect(logs).To(ContainSubstring("three passed"))
	verify, err := kubectl("-n", ns, "logs", "job/"+m[1]+"-clone")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(verify).To(ContainSubstring("the workspace holds the checkout of " + first.Status.Commit))
	g.Expect(run.Status.Workspace).To(Equal(first.Name + "-ws"))
	waitWorkspaceReleased(t, ns, "first") // the workspace it took over, released at its end
}

// TestResumeOfATriggersRunOnGitea: flowci resume of a run a trigger started asks the
// trigger, which resumes it as its own run: only the failed step and what follows run,
// and the resumed run posts its commit status under the same context, so the commit's
// red check on Gitea turns green.
func TestResumeOfATriggersRunOnGitea(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	gitea := forgetest.StartGitea(t, gitHost)
	repoURL := gitea.CreateRepo(t, "resume")
	local := gittest.NewRepo(t, map[string]string{"build/flow-ci.yaml": resumePipeline})
	commit := local.RevParse(t, "main")
	gitea.Push(t, local.Path, "resume", "main")
	token := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "forge"}, StringData: map[string]string{"token": gitea.Token}}
	g.Expect(k8s.Create(ctx, token)).To(Succeed())
	tr := &civ1alpha1.PipelineTrigger{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}, Spec: civ1alpha1.PipelineTriggerSpec{
		RepoURL: repoURL, Branches: []string{"main"}, Interval: &metav1.Duration{Duration: 10 * time.Second},
		Report:   &civ1alpha1.CommitStatusReport{Provider: "gitea", URL: gitea.URL, SecretRef: civ1alpha1.SecretReference{Name: "forge"}},
		Template: civ1alpha1.PipelineRunTemplate{Workspace: civ1alpha1.WorkspaceSpec{RetainOnFailure: &metav1.Duration{Duration: 10 * time.Minute}}},
	}}
	g.Expect(k8s.Create(ctx, tr)).To(Succeed())
	states := func(g Gomega) []string {
		var out []string
		for _, s := range gitea.Statuses(t, "resume", commit) {
			g.Expect(s.Context).To(Equal("flow-ci/Resume"), "the pipeline's name")
			out = append(out, s.State)
		}
		return out
	}
	var first civ1alpha1.PipelineRun
	g.Eventually(func(g Gomega) {
		list := &civ1alpha1.PipelineRunList{}
		g.Expect(k8s.List(ctx, list, client.InNamespace(ns))).To(Succeed())
		g.Expect(list.Items).To(HaveLen(1))
		first = list.Items[0]
		g.Expect(first.Status.Phase).To(Equal(civ1alpha1.PhaseFailed))
		g.Expect(states(g)).To(Equal([]string{"pending", "failure"}))
	}).WithTimeout(5 * time.Minute).WithPolling(time.Second).Should(Succeed())

	out, err := exec.Command(flowciBinary(t), "-n", ns, "resume", first.Name).CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), string(out))
	m := regexp.MustCompile(`pipelinerun/(app-main-resume-\S+) created \(resumes ` + first.Name + `\)`).FindStringSubmatch(string(out))
	g.Expect(m).NotTo(BeNil(), string(out))
	run := waitFinished(t, ns, m[1], 5*time.Minute)
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded), toJSON(run.Status))
	g.Expect(metav1.GetControllerOf(run).Name).To(Equal("app"), "the trigger's own run")
	g.Expect(run.Spec.ResumeFrom.Run).To(Equal(first.Name))
	g.Expect(run.Spec.ResumeFrom.UID).To(Equal(string(first.UID)), "pinned")
	g.Expect(run.Status.Steps[2].Phase).To(Equal(civ1alpha1.StepSucceeded))
	g.Expect(run.Status.Steps[1].Reason).To(Equal(civ1alpha1.ReasonReused))
	g.Eventually(states).WithTimeout(time.Minute).WithPolling(time.Second).
		Should(Equal([]string{"pending", "failure", "pending", "success"}), "the resumed run's status, under the same context")
	g.Expect(operatorLogs(t)).NotTo(ContainSubstring(gitea.Token))
}
