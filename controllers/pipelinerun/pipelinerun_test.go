package pipelinerun

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gittest"
	"github.com/flow-ci/flow-ci/internal/render"
)

const threeSteps = `name: Three steps
image: golang:1.26
env:
  GOFLAGS: -mod=mod
steps:
- name: Vet
  commands:
  - go vet ./...
- name: Test
  image: golang:1.26-test
  env:
    GOFLAGS: -count=1
  commands:
  - go test ./...
- name: Build
  workingDir: cmd/app
  timeout: 90s
  commands:
  - go build -o /workspace/src/bin/app .
`

// serveRepo serves a repository holding build/flow-ci.yaml over real git http-backend.
func serveRepo(t *testing.T, pipelineFile string) (*gittest.Repo, string) {
	t.Helper()
	repo := gittest.NewRepo(t, map[string]string{"build/flow-ci.yaml": pipelineFile, "README.md": "hi\n"})
	srv := gittest.NewHTTPServer(t, repo.Root, gittest.HTTPOptions{})
	return repo, srv.RepoURL(repo)
}

func TestRunSucceedsThreeSteps(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	repo, url := serveRepo(t, threeSteps)
	head := repo.RevParse(t, "main")
	startManager(t, ns)
	run := newRunObject(ns, "build", url)
	createRun(t, run)

	clone := waitJob(t, ns, "build-clone")
	g.Expect(clone.Spec.Template.Spec.Containers[0].Args).To(ContainElements("--commit", head))
	g.Expect(jobsOf(g, ns)).To(HaveLen(1), "no step Job before the clone completed")
	// Status is patched after the Job is created, in the same reconcile.
	g.Eventually(func(g Gomega) {
		run = getRun(g, ns, "build")
		g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseRunning))
	}).Should(Succeed())
	g.Expect(run.Status.Commit).To(Equal(head))
	g.Expect(run.Status.ShortCommit).To(Equal(head[:7]))
	g.Expect(run.Status.PipelineName).To(Equal("Three steps"))
	g.Expect(run.Status.DefinitionDigest).To(HavePrefix("sha256:"))
	g.Expect(run.Status.Steps).To(HaveLen(3))
	completeJob(t, clone, "node-a")

	wantImages := []string{"golang:1.26", "golang:1.26-test", "golang:1.26"}
	wantCommands := []string{"go vet ./...", "go test ./...", "go build -o /workspace/src/bin/app ."}
	wantDirs := []string{"/workspace/src", "/workspace/src", "/workspace/src/cmd/app"}
	for i := range 3 {
		job := waitJob(t, ns, stepJobName(run, i))
		// Strictly one at a time: exactly clone + i+1 step Jobs exist now.
		g.Consistently(func(g Gomega) { g.Expect(jobsOf(g, ns)).To(HaveLen(i + 2)) }).
			WithTimeout(300 * time.Millisecond).Should(Succeed())
		spec := job.Spec.Template.Spec
		c := spec.Containers[0]
		g.Expect(c.Image).To(Equal(wantImages[i]))
		g.Expect(c.Command[:2]).To(Equal([]string{"/bin/sh", "-c"}))
		g.Expect(c.Command[2]).To(ContainSubstring(wantCommands[i]))
		g.Expect(c.WorkingDir).To(Equal(wantDirs[i]))
		g.Expect(envMap(c.Env)).To(HaveKeyWithValue("FLOWCI_COMMIT", head))
		g.Expect(envMap(c.Env)).To(HaveKeyWithValue("FLOWCI_STEP", run.Status.Steps[i].Name))
		g.Expect(envMap(c.Env)).To(HaveKeyWithValue("CI", "true"))
		g.Expect(spec.SecurityContext.RunAsNonRoot).To(HaveValue(BeTrue()))
		g.Expect(*spec.AutomountServiceAccountToken).To(BeFalse())
		g.Expect(spec.Volumes[0].PersistentVolumeClaim.ClaimName).To(Equal("build-ws"))
		g.Expect(render.PinnedNode(job)).To(Equal("node-a"), "steps run where the clone ran")
		g.Expect(job.Labels).To(HaveKeyWithValue(civ1alpha1.LabelRunUID, string(run.UID)))
		g.Expect(job.Labels).To(HaveKeyWithValue(civ1alpha1.LabelStepIndex, fmt.Sprint(i)))
		g.Expect(metav1.IsControlledBy(job, run)).To(BeTrue())
		g.Eventually(func(g Gomega) {
			r := getRun(g, ns, "build")
			g.Expect(r.Status.CurrentStep).To(Equal(r.Status.Steps[i].Name))
			g.Expect(r.Status.Progress).To(Equal(fmt.Sprintf("%d/3", i)))
		}).Should(Succeed())
		completeJob(t, job, "node-a")
	}
	g.Expect(*waitJob(t, ns, stepJobName(run, 2)).Spec.ActiveDeadlineSeconds).To(BeEquivalentTo(90))

	run = waitFinished(t, ns, "build")
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded))
	g.Expect(run.Status.Progress).To(Equal("3/3"))
	g.Expect(run.Status.CompletionTime).NotTo(BeNil())
	g.Expect(run.Status.ObservedGeneration).To(Equal(run.Generation))
	cond := apimeta.FindStatusCondition(run.Status.Conditions, civ1alpha1.ConditionSucceeded)
	g.Expect(cond.Status).To(Equal(metav1.ConditionTrue))
	for _, s := range run.Status.Steps {
		g.Expect(s.Phase).To(Equal(civ1alpha1.StepSucceeded))
		g.Expect(s.ExitCode).To(HaveValue(BeZero()))
	}
	g.Eventually(func() []string { return eventReasons(t, ns) }).Should(ContainElements("Normal/Succeeded"))
	g.Expect(eventReasons(t, ns)).NotTo(ContainElement(BeElementOf("Normal/Started", "Normal/StepStarted", "Normal/StepSucceeded")),
		"progress is in status, not events, by default")
}

// TestStepEvents: with StepEvents (--step-events) the run's start and each step's start
// and success are events too.
func TestStepEvents(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, oneStep)
	startManager(t, ns, func(r *Reconciler) { r.StepEvents = true })
	startFirstStep(t, ns, "loud", url, nil)
	completeRun(t, ns, "loud")
	g.Eventually(func() []string { return eventReasons(t, ns) }).Should(ContainElements(
		"Normal/Started", "Normal/StepStarted", "Normal/StepSucceeded", "Normal/Succeeded"))
}

func envMap(env []corev1.EnvVar) map[string]string {
	m := map[string]string{}
	for _, e := range env {
		m[e.Name] = e.Value
	}
	return m
}

func TestRunFailingStep(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, threeSteps)
	startManager(t, ns)
	createRun(t, newRunObject(ns, "fail", url))
	completeJob(t, waitJob(t, ns, "fail-clone"), "node-a")
	run := pinnedRun(t, ns, "fail")
	first := waitJob(t, ns, stepJobName(run, 0))
	failJob(t, first, "node-a", 2, "vet: x.go:3: unreachable code\n")

	run = waitFinished(t, ns, "fail")
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseFailed))
	cond := apimeta.FindStatusCondition(run.Status.Conditions, civ1alpha1.ConditionSucceeded)
	g.Expect(cond.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(cond.Reason).To(Equal(civ1alpha1.ReasonStepFailed))
	g.Expect(cond.Message).To(Equal(`step "Vet" failed with exit code 2`))
	g.Expect(run.Status.Steps[0].Phase).To(Equal(civ1alpha1.StepFailed))
	g.Expect(run.Status.Steps[0].ExitCode).To(HaveValue(BeEquivalentTo(2)))
	g.Expect(run.Status.Steps[0].Message).To(ContainSubstring("unreachable code"))
	g.Expect(run.Status.Steps[1].Phase).To(Equal(civ1alpha1.StepSkipped))
	g.Expect(run.Status.Steps[2].Phase).To(Equal(civ1alpha1.StepSkipped))
	g.Consistently(func(g Gomega) { g.Expect(jobsOf(g, ns)).To(HaveLen(2)) }).
		WithTimeout(time.Second).Should(Succeed(), "no Job for the skipped steps")
	g.Eventually(func() []string { return eventReasons(t, ns) }).Should(ContainElements(
		"Warning/StepFailed", "Warning/Failed: StepFailed"))
}

func TestRunPermanentErrors(t *testing.T) {
	t.Parallel()
	repo := gittest.NewRepo(t, map[string]string{
		"build/flow-ci.yaml": "name: bad\nsteps:\n- name: a\n  commands: []\n",
		"other/flow-ci.yaml": threeSteps,
	})
	srv := gittest.NewHTTPServer(t, repo.Root, gittest.HTTPOptions{})
	url := srv.RepoURL(repo)
	cases := []struct {
		name, branch, path, reason, message string
	}{
		{"invalid-definition", "main", "", civ1alpha1.ReasonInvalidDefinition, "steps[0].commands: must not be empty (line 4)"},
		{"missing-file", "main", "nope/flow-ci.yaml", civ1alpha1.ReasonDefinitionNotFound, "nope/flow-ci.yaml"},
		{"unknown-branch", "no-such-branch", "", civ1alpha1.ReasonBranchNotFound, "no-such-branch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			ns := env.NewNamespace(t)
			startManager(t, ns)
			run := newRunObject(ns, tc.name, url)
			run.Spec.Branch, run.Spec.PipelinePath = tc.branch, tc.path
			createRun(t, run)
			run = waitFinished(t, ns, tc.name)
			cond := apimeta.FindStatusCondition(run.Status.Conditions, civ1alpha1.ConditionSucceeded)
			g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseFailed))
			g.Expect(cond.Reason).To(Equal(tc.reason))
			g.Expect(cond.Message).To(ContainSubstring(tc.message))
			g.Expect(jobsOf(g, ns)).To(BeEmpty())
			g.Eventually(func() []string { return eventReasons(t, ns) }).Should(ContainElement("Warning/Failed: " + tc.reason))
		})
	}
}

// TestRestartDoesNotDuplicate stops the manager mid-run and starts a new one.
func TestRestartDoesNotDuplicate(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	repo, url := serveRepo(t, threeSteps)
	stop := startManager(t, ns)
	createRun(t, newRunObject(ns, "restart", url))
	completeJob(t, waitJob(t, ns, "restart-clone"), "node-a")
	run := pinnedRun(t, ns, "restart")
	first := waitJob(t, ns, stepJobName(run, 0))
	stop()

	// While no controller runs: the branch moves, and the first step completes.
	repo.Commit(t, map[string]string{"build/flow-ci.yaml": strings.Replace(threeSteps, "Vet", "Lint", 1)})
	completeJob(t, first, "node-a")
	startManager(t, ns)

	second := waitJob(t, ns, stepJobName(run, 1))
	g.Expect(second.UID).NotTo(BeEmpty())
	completeJob(t, second, "node-a")
	completeJob(t, waitJob(t, ns, stepJobName(run, 2)), "node-a")
	run = waitFinished(t, ns, "restart")
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded))
	g.Expect(run.Status.Steps[0].Name).To(Equal("Vet"), "the pinned definition, not the moved branch")
	jobs := jobsOf(g, ns)
	g.Expect(jobs).To(HaveLen(4), "exactly one clone and one Job per step")
	for _, j := range jobs {
		g.Expect(j.CreationTimestamp.Time).NotTo(BeZero())
	}
	g.Expect(first.UID).To(Equal(jobs[0].UID), "the first step Job was never recreated")
}

func TestForeignJobIsAConflict(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, threeSteps)
	foreign := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "taken-clone", Labels: map[string]string{"owner": "someone"}},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "x", Image: "busybox:1"}},
		}}},
	}
	g.Expect(env.Client.Create(context.Background(), foreign)).To(Succeed())
	startManager(t, ns)
	createRun(t, newRunObject(ns, "taken", url))
	run := waitFinished(t, ns, "taken")
	cond := apimeta.FindStatusCondition(run.Status.Conditions, civ1alpha1.ConditionSucceeded)
	g.Expect(cond.Reason).To(Equal(civ1alpha1.ReasonChildConflict))
	g.Expect(cond.Message).To(ContainSubstring(`Job "taken-clone" exists and is not owned by this run`))
	after := &batchv1.Job{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(foreign), after)).To(Succeed())
	g.Expect(after.OwnerReferences).To(BeEmpty())
	g.Expect(after.Labels).To(Equal(map[string]string{"owner": "someone"}))
	g.Expect(after.ResourceVersion).To(Equal(foreign.ResourceVersion), "the foreign Job is untouched")
}

// TestHundredStepsStatusBounded runs a 100-step pipeline with a failure message on the
// last step and reports the size of the status.
func TestHundredStepsStatusBounded(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	var b strings.Builder
	b.WriteString("name: Hundred\nsteps:\n")
	for i := range 100 {
		fmt.Fprintf(&b, "- name: step-with-a-reasonably-long-name-%03d\n  commands:\n  - echo %d\n", i, i)
	}
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, b.String())
	startManager(t, ns)
	createRun(t, newRunObject(ns, "hundred", url))
	completeJob(t, waitJob(t, ns, "hundred-clone"), "node-a")
	run := pinnedRun(t, ns, "hundred")
	for i := range 99 {
		completeJob(t, waitJob(t, ns, stepJobName(run, i)), "node-a")
	}
	failJob(t, waitJob(t, ns, stepJobName(run, 99)), "node-a", 1, strings.Repeat("x", 10000))
	run = waitFinished(t, ns, "hundred")
	g.Expect(run.Status.Steps[99].Message).To(HaveLen(civ1alpha1.MaxMessageBytes))
	raw, err := json.Marshal(run.Status)
	g.Expect(err).NotTo(HaveOccurred())
	t.Logf("status of a 100-step run: %d bytes", len(raw))
	g.Expect(len(raw)).To(BeNumerically("<", 64<<10))
}

// TestPrivateRepo covers gitSecretRef: a Secret applied after the run is waited for
// (Reconciling=True), wrong credentials fail the run without leaking them, and the
// Secret reaches only the clone pod.
func TestPrivateRepo(t *testing.T) {
	t.Parallel()
	repo := gittest.NewRepo(t, map[string]string{"build/flow-ci.yaml": threeSteps})
	// HTTPS with a private CA: credentials are never sent over plain http.
	srv := gittest.NewHTTPServer(t, repo.Root, gittest.HTTPOptions{Username: "ci", Password: "s3cret-pass", TLS: true})
	url := srv.RepoURL(repo)
	secret := func(ns, name, password string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Data: map[string][]byte{"username": []byte("ci"), "password": []byte(password), "ca.crt": srv.CACert}}
	}

	t.Run("secret applied later", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		ns := env.NewNamespace(t)
		startManager(t, ns)
		run := newRunObject(ns, "private", url)
		run.Spec.GitSecretRef = &civ1alpha1.SecretReference{Name: "creds"}
		createRun(t, run)
		g.Eventually(func(g Gomega) {
			c := apimeta.FindStatusCondition(getRun(g, ns, "private").Status.Conditions, civ1alpha1.ConditionReconciling)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Message).To(ContainSubstring(`git secret "creds" not found`))
		}).WithTimeout(20 * time.Second).Should(Succeed())
		g.Expect(env.Client.Create(context.Background(), secret(ns, "creds", "s3cret-pass"))).To(Succeed())

		clone := waitJob(t, ns, "private-clone")
		vols := clone.Spec.Template.Spec.Volumes
		g.Expect(vols).To(ContainElement(HaveField("VolumeSource.Secret.SecretName", "creds")))
		completeJob(t, clone, "node-a")
		step := waitJob(t, ns, stepJobName(pinnedRun(t, ns, "private"), 0))
		for _, v := range step.Spec.Template.Spec.Volumes {
			g.Expect(v.Secret).To(BeNil(), "steps never see the git Secret")
		}
		g.Eventually(func(g Gomega) {
			g.Expect(apimeta.FindStatusCondition(getRun(g, ns, "private").Status.Conditions, civ1alpha1.ConditionReconciling)).To(BeNil())
		}).Should(Succeed())
	})

	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		ns := env.NewNamespace(t)
		g.Expect(env.Client.Create(context.Background(), secret(ns, "creds", "wrong-hunter2"))).To(Succeed())
		startManager(t, ns)
		run := newRunObject(ns, "denied", url)
		run.Spec.GitSecretRef = &civ1alpha1.SecretReference{Name: "creds"}
		createRun(t, run)
		run = waitFinished(t, ns, "denied")
		c := apimeta.FindStatusCondition(run.Status.Conditions, civ1alpha1.ConditionSucceeded)
		g.Expect(c.Reason).To(Equal(civ1alpha1.ReasonAuthenticationFailed))
		g.Expect(apimeta.FindStatusCondition(run.Status.Conditions, civ1alpha1.ConditionReconciling)).To(BeNil())
		raw, _ := json.Marshal(run.Status)
		g.Expect(string(raw)).NotTo(ContainSubstring("wrong-hunter2"))
		// Events follow the status write, and the recorder sends them asynchronously.
		g.Eventually(func(g Gomega) {
			events := &eventsv1.EventList{}
			g.Expect(env.Client.List(context.Background(), events, client.InNamespace(ns))).To(Succeed())
			raw, _ = json.Marshal(events)
			g.Expect(string(raw)).To(ContainSubstring(civ1alpha1.ReasonAuthenticationFailed))
		}).Should(Succeed())
		g.Expect(string(raw)).NotTo(ContainSubstring("wrong-hunter2"))
	})
}
