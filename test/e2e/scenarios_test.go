//go:build e2e

package e2e

import (
	"context"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gittest"
)

// demoProgram is hack/demo/hello, the program `make demo` builds: a stdlib-only Go
// program with a test, and a pipeline that vets, tests, builds and then runs it; the
// last step uses the binary the build step left on the shared volume.
func demoProgram(t *testing.T) map[string]string {
	t.Helper()
	dir := filepath.Join(root, "hack", "demo", "hello")
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// gitServer serves repositories where pods can reach them: on the bridge gateway.
func gitServer(t testing.TB, files map[string]string, opts gittest.HTTPOptions) (*gittest.Repo, *gittest.HTTPServer) {
	t.Helper()
	repo := gittest.NewRepo(t, files)
	opts.Addr = net.JoinHostPort(gitHost, "0")
	return repo, gittest.NewHTTPServer(t, repo.Root, opts)
}

// Scenarios 1 and 6: a real Go build, kubectl get columns and kubectl wait.
func TestGoProgramBuilds(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := newNamespace(t)
	repo, srv := gitServer(t, demoProgram(t), gittest.HTTPOptions{})
	start := time.Now()
	createRun(t, ns, "hello", srv.RepoURL(repo), nil)

	out, err := kubectl("-n", ns, "wait", "--for=condition=Succeeded", "fpr/hello", "--timeout=600s")
	g.Expect(err).NotTo(HaveOccurred(), out)
	t.Logf("3-step Go run finished %.1fs after create", time.Since(start).Seconds())
	run := getRun(g, ns, "hello")
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded))
	g.Expect(run.Status.Commit).To(Equal(repo.RevParse(t, "main")))
	g.Expect(run.Status.Progress).To(Equal("3/3"))

	jobs := jobsIn(g, ns)
	g.Expect(jobs).To(HaveLen(4), "one clone Job and one Job per step")
	for _, j := range jobs {
		g.Expect(jobComplete(&j)).To(BeTrue(), "Job %s", j.Name)
	}
	logs, err := kubectl("-n", ns, "logs", "job/"+run.Status.Steps[0].JobName)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(logs).To(ContainSubstring("+ go vet ./..."))
	g.Expect(logs).To(ContainSubstring("--- PASS: TestGreeting"))
	logs, err = kubectl("-n", ns, "logs", "job/"+run.Status.Steps[2].JobName)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(logs).To(ContainSubstring("+ ./bin/app\nhello from flow-ci"), "the binary built by the previous step")

	table, err := kubectl("-n", ns, "get", "fpr", "-o", "wide")
	g.Expect(err).NotTo(HaveOccurred())
	t.Logf("kubectl get fpr -o wide:\n%s", table)
	header := strings.Fields(strings.SplitN(table, "\n", 2)[0])
	g.Expect(header).To(Equal([]string{"NAME", "PHASE", "PROGRESS", "STEP", "COMMIT", "BRANCH", "STARTED", "AGE", "COMPLETED", "REPO"}))
	g.Expect(table).To(ContainSubstring(run.Status.ShortCommit))
	logHandoffs(t, ns, run)
	assertRestricted(t, ns)
	waitWorkspaceReleased(t, ns, "hello")
	logArchivedSize(t, g, ns, "hello")
}

// logArchivedSize reports what the archive stores of a run's logs (compressed) against
// their raw bytes, once it has the run's record.
func logArchivedSize(t *testing.T, g Gomega, ns, name string) {
	t.Helper()
	c := archiveClient(t, g, reader(t, g, ns, "sizer", []rbacv1.PolicyRule{runReader}))
	var raw, stored int64
	g.Eventually(func(g Gomega) {
		rec, err := c.Get(context.Background(), ns, name)
		g.Expect(err).NotTo(HaveOccurred())
		raw, stored = 0, 0
		for _, s := range rec.Streams {
			raw, stored = raw+s.Bytes, stored+s.Stored
		}
	}).WithTimeout(time.Minute).Should(Succeed())
	t.Logf("archived logs of the Go build and test: %d raw bytes stored in %d (%.0f%%)", raw, stored, 100*float64(stored)/float64(raw))
}

// logHandoffs reports, from the objects' own timestamps, the time from one step Job's
// completion to the next step's container starting.
func logHandoffs(t *testing.T, ns string, run *civ1alpha1.PipelineRun) {
	g := NewWithT(t)
	started := map[string]time.Time{}
	for _, p := range podsIn(g, ns) {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Terminated != nil {
				started[p.Labels[batchv1.JobNameLabel]] = cs.State.Terminated.StartedAt.Time
			}
		}
	}
	var gaps []time.Duration
	for i := 1; i < len(run.Status.Steps); i++ {
		prev, next := run.Status.Steps[i-1], run.Status.Steps[i]
		if prev.CompletionTime != nil && !started[next.JobName].IsZero() {
			gaps = append(gaps, started[next.JobName].Sub(prev.CompletionTime.Time))
		}
	}
	sort.Slice(gaps, func(i, j int) bool { return gaps[i] < gaps[j] })
	if len(gaps) > 0 {
		t.Logf("handoff (Job complete -> next container started): p50 %v, max %v, all %v", gaps[len(gaps)/2], gaps[len(gaps)-1], gaps)
	}
}

func jobComplete(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// Scenario 7: every pod the operator created passed the restricted profile (the
// namespace enforces it, so a non-compliant pod could not exist) and has no token.
func assertRestricted(t *testing.T, ns string) {
	g := NewWithT(t)
	pods := podsIn(g, ns)
	g.Expect(pods).NotTo(BeEmpty())
	for _, p := range pods {
		g.Expect(p.Spec.AutomountServiceAccountToken).To(HaveValue(BeFalse()), "pod %s", p.Name)
		for _, v := range p.Spec.Volumes {
			g.Expect(v.Projected).To(BeNil(), "pod %s mounts a projected token volume", p.Name)
		}
		g.Expect(p.Spec.SecurityContext.RunAsNonRoot).To(HaveValue(BeTrue()))
	}
}

// Scenario 2: a failing step.
func TestFailingStep(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := newNamespace(t)
	repo, srv := gitServer(t, map[string]string{"build/flow-ci.yaml": `name: Failing
steps:
- name: Fine
  commands:
  - echo fine
- name: Broken
  commands:
  - echo about to fail
  - echo "the reason it failed" >&2
  - exit 3
- name: Never
  commands:
  - echo never
`}, gittest.HTTPOptions{})
	createRun(t, ns, "broken", srv.RepoURL(repo), nil)
	run := waitFinished(t, ns, "broken", 5*time.Minute)
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseFailed))
	cond := apimeta.FindStatusCondition(run.Status.Conditions, civ1alpha1.ConditionSucceeded)
	g.Expect(cond.Reason).To(Equal(civ1alpha1.ReasonStepFailed))
	g.Expect(cond.Message).To(Equal(`step "Broken" failed with exit code 3`))
	g.Expect(run.Status.Steps[1].ExitCode).To(HaveValue(BeEquivalentTo(3)))
	g.Expect(run.Status.Steps[1].Message).To(ContainSubstring("the reason it failed"))
	g.Expect(run.Status.Steps[2].Phase).To(Equal(civ1alpha1.StepSkipped))
	g.Expect(jobsIn(g, ns)).To(HaveLen(3), "no Job for the skipped step")
	assertRestricted(t, ns)
	waitWorkspaceReleased(t, ns, "broken")
}

// Scenario 3: a private repository over HTTPS with basic auth.
func TestPrivateRepo(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := newNamespace(t)
	const password = "e2e-Very-Secret-9f3b"
	repo, srv := gitServer(t, map[string]string{"build/flow-ci.yaml": "name: Private\nsteps:\n- name: Show\n  commands:\n  - ls -la\n"},
		gittest.HTTPOptions{Username: "ci", Password: password, TLS: true})
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "git-creds"},
		Data: map[string][]byte{"username": []byte("ci"), "password": []byte(password), "ca.crt": srv.CACert}}
	g.Expect(k8s.Create(context.Background(), secret)).To(Succeed())

	createRun(t, ns, "with-secret", srv.RepoURL(repo), func(r *civ1alpha1.PipelineRun) {
		r.Spec.GitSecretRef = &civ1alpha1.SecretReference{Name: "git-creds"}
	})
	createRun(t, ns, "without-secret", srv.RepoURL(repo), nil)
	ok := waitFinished(t, ns, "with-secret", 5*time.Minute)
	g.Expect(ok.Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded))
	denied := waitFinished(t, ns, "without-secret", 2*time.Minute)
	g.Expect(apimeta.FindStatusCondition(denied.Status.Conditions, civ1alpha1.ConditionSucceeded).Reason).
		To(Equal(civ1alpha1.ReasonAuthenticationFailed))

	events := &eventsv1.EventList{}
	g.Expect(k8s.List(context.Background(), events, client.InNamespace(ns))).To(Succeed())
	for what, text := range map[string]string{
		"status": toJSON(ok.Status) + toJSON(denied.Status), "events": toJSON(events), "operator logs": operatorLogs(t),
	} {
		g.Expect(text).NotTo(ContainSubstring(password), "credential in %s", what)
	}
	assertRestricted(t, ns)
	waitWorkspaceReleased(t, ns, "with-secret")
	waitWorkspaceReleased(t, ns, "without-secret")
}

// Scenario 4: the original seed format, with no image: the default step image runs it.
func TestSeedFormat(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := newNamespace(t)
	repo, srv := gitServer(t, map[string]string{"build/flow-ci.yaml": seedFile}, gittest.HTTPOptions{})
	createRun(t, ns, "seed", srv.RepoURL(repo), nil)
	run := waitFinished(t, ns, "seed", 3*time.Minute)
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded))
	job := &batchv1.Job{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: run.Status.Steps[0].JobName}, job)).To(Succeed())
	g.Expect(job.Spec.Template.Spec.Containers[0].Image).To(Equal("localhost/busybox:local"))
	logs, err := kubectl("-n", ns, "logs", "job/"+job.Name)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(logs).To(Equal("+ echo seed format works\nseed format works\n"))
	waitWorkspaceReleased(t, ns, "seed")
}

// Scenario 5: the operator pod is deleted while a step runs.
func TestControllerRestartMidStep(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	repo, srv := gitServer(t, map[string]string{"build/flow-ci.yaml": `name: Sleepy
steps:
- name: Sleep
  commands:
  - sleep 20
- name: After
  commands:
  - echo done
`}, gittest.HTTPOptions{})
	createRun(t, ns, "sleepy", srv.RepoURL(repo), nil)
	g.Eventually(func(g Gomega) {
		run := getRun(g, ns, "sleepy")
		g.Expect(run.Status.CurrentStep).To(Equal("Sleep"))
	}).WithTimeout(3 * time.Minute).WithPolling(500 * time.Millisecond).Should(Succeed())
	_, err := kubectl("-n", operatorNS, "delete", "pod", "-l", "app.kubernetes.io/component=controller-manager", "--wait=true")
	g.Expect(err).NotTo(HaveOccurred())
	run := waitFinished(t, ns, "sleepy", 5*time.Minute)
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded))
	names := map[string]int{}
	for _, j := range jobsIn(g, ns) {
		names[j.Name]++
	}
	g.Expect(names).To(HaveLen(3), "clone + 2 steps, no duplicates: %v", names)
	for _, j := range jobsIn(g, ns) {
		g.Expect(j.Status.Succeeded).To(BeEquivalentTo(1), "Job %s ran exactly one pod to success", j.Name)
		g.Expect(j.Status.Failed).To(BeZero())
	}
	waitWorkspaceReleased(t, ns, "sleepy")
}
