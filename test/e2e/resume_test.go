//go:build e2e

package e2e

import (
	"os/exec"
	"regexp"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
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
