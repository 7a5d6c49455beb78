//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gittest"
)

// b and c each write their file and then wait for the other's: neither can succeed
// unless both run at once.
const diamondFile = `name: Diamond
steps:
- name: a
  commands:
  - mkdir -p out
- name: b
  dependsOn: [a]
  resources: {cpu: 50m, memory: 32Mi, limits: {memory: 96Mi}}
  commands:
  - echo from-b > out/b
  - for i in $(seq 120); do [ -f out/c ] && exit 0; sleep 0.5; done; exit 1
- name: c
  dependsOn: [a]
  commands:
  - echo from-c > out/c
  - for i in $(seq 120); do [ -f out/b ] && exit 0; sleep 0.5; done; exit 1
- name: d
  dependsOn: [b, c]
  commands:
  - cat out/b out/c
`

// Parallel steps on the real cluster: b and c overlap in time on the shared workspace
// and d reads what both wrote; b's resources land on its pod.
func TestDiamondOverlaps(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := newNamespace(t)
	repo, srv := gitServer(t, map[string]string{"build/flow-ci.yaml": diamondFile}, gittest.HTTPOptions{})
	createRun(t, ns, "diamond", srv.RepoURL(repo), nil)
	run := waitFinished(t, ns, "diamond", 5*time.Minute)
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded), toJSON(run.Status))

	terminated := map[string]*corev1.ContainerStateTerminated{}
	resources := map[string]corev1.ResourceRequirements{}
	for _, p := range podsIn(g, ns) {
		step := p.Labels[civ1alpha1.LabelStep]
		if step == "" || len(p.Status.ContainerStatuses) == 0 {
			continue
		}
		terminated[step] = p.Status.ContainerStatuses[0].State.Terminated
		resources[step] = p.Spec.Containers[0].Resources
	}
	g.Expect(terminated).To(HaveKey("b"))
	g.Expect(terminated).To(HaveKey("c"))
	b, c := terminated["b"], terminated["c"]
	g.Expect(b.StartedAt.After(c.FinishedAt.Time)).To(BeFalse(), "b started %v, after c finished %v", b.StartedAt, c.FinishedAt)
	g.Expect(c.StartedAt.After(b.FinishedAt.Time)).To(BeFalse(), "c started %v, after b finished %v", c.StartedAt, b.FinishedAt)
	g.Expect(terminated["d"].StartedAt.Before(&b.FinishedAt)).To(BeFalse(), "d after b")
	rb := resources["b"]
	g.Expect(rb.Requests.Cpu().Cmp(resource.MustParse("50m"))).To(Equal(0), "%v", rb)
	g.Expect(rb.Limits.Memory().Cmp(resource.MustParse("96Mi"))).To(Equal(0), "%v", rb)

	logs, err := kubectl("-n", ns, "logs", "job/"+run.Status.Steps[3].JobName)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(logs).To(ContainSubstring("from-b\nfrom-c\n"))
	assertRestricted(t, ns)
	waitWorkspaceReleased(t, ns, "diamond")
}

// A finally step runs after a failing step, in the same workspace, and the run still
// fails with the step's reason.
func TestFinallyAfterFailingStep(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := newNamespace(t)
	repo, srv := gitServer(t, map[string]string{"build/flow-ci.yaml": `name: Finally
steps:
- name: Broken
  commands:
  - echo broken > status.txt
  - exit 4
- name: Never
  commands:
  - echo never
finally:
- name: Report
  when: {status: failure}
  commands:
  - cat status.txt
`}, gittest.HTTPOptions{})
	createRun(t, ns, "finally", srv.RepoURL(repo), nil)
	run := waitFinished(t, ns, "finally", 5*time.Minute)
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseFailed))
	cond := apimeta.FindStatusCondition(run.Status.Conditions, civ1alpha1.ConditionSucceeded)
	g.Expect(cond.Message).To(Equal(`step "Broken" failed with exit code 4`))
	g.Expect(run.Status.Steps[1].Reason).To(Equal(civ1alpha1.ReasonUpstreamFailed))
	report := run.Status.Steps[2]
	g.Expect(report.Finally).To(BeTrue())
	g.Expect(report.Phase).To(Equal(civ1alpha1.StepSucceeded))
	job := &batchv1.Job{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: report.JobName}, job)).To(Succeed())
	logs, err := kubectl("-n", ns, "logs", "job/"+job.Name)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(strings.TrimSpace(logs)).To(HaveSuffix("broken"))
	waitWorkspaceReleased(t, ns, "finally")
}
