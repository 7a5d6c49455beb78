package archive

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers"
	"github.com/flow-ci/flow-ci/controllers/testenv"
	"github.com/flow-ci/flow-ci/internal/archive"
	"github.com/flow-ci/flow-ci/internal/archive/runrecord"
	"github.com/flow-ci/flow-ci/internal/archive/sqlstore"
)

// startArchive runs the archive against the test API server with an embedded store.
func startArchive(t *testing.T, hold time.Duration) (archive.Store, *Reconciler) {
	t.Helper()
	store, err := sqlstore.OpenEmbedded(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{Scheme: env.Scheme, Cache: controllers.ArchiveCacheOptions(),
		Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(env.Config)
	r := &Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Pods: cs.CoreV1(), Store: store,
		Limits: Limits{MaxLine: 1 << 16, MaxLog: 1 << 20, Chunk: 1 << 16, Flush: 100 * time.Millisecond},
		Hold:   hold, Log: ctrl.Log.WithName("archive")}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := r.SetupWithManager(ctx, mgr, controller.Options{SkipNameValidation: ptr.To(true)}); err != nil {
		t.Fatal(err)
	}
	testenv.StartManager(t, mgr)
	return store, r
}

func newRun(t *testing.T, ns, name string) *v1alpha1.PipelineRun {
	t.Helper()
	run := &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.PipelineRunSpec{RepoURL: "https://git.example/app.git", Branch: "main"}}
	if err := env.Client.Create(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	return run
}

func held(g Gomega, run *v1alpha1.PipelineRun) bool {
	got := &v1alpha1.PipelineRun{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(run), got)).To(Succeed())
	return controllerutil.ContainsFinalizer(got, v1alpha1.FinalizerArchive)
}

// finish sets the run's final status, as the operator would.
func finish(t *testing.T, run *v1alpha1.PipelineRun, phase v1alpha1.PipelineRunPhase, steps ...v1alpha1.StepStatus) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		got := &v1alpha1.PipelineRun{}
		g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(run), got)).To(Succeed())
		now := metav1.Now()
		got.Status.Phase, got.Status.Commit, got.Status.CompletionTime, got.Status.Steps = phase, "0123456789abcdef0123", &now, steps
		g.Expect(env.Client.Status().Update(context.Background(), got)).To(Succeed())
	}).Should(Succeed())
}

// definition creates the run's definition ConfigMap, controlled by the run.
func definition(t *testing.T, run *v1alpha1.PipelineRun, file string) {
	t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: run.Namespace, Name: run.Name + "-definition",
		Labels: map[string]string{v1alpha1.LabelRunUID: string(run.UID), v1alpha1.LabelComponent: v1alpha1.ComponentDefinition}},
		Data: map[string]string{v1alpha1.DefinitionKey: file}}
	if err := controllerutil.SetControllerReference(run, cm, env.Scheme); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
}

// runningPod makes a step Job of the run and a pod of that Job whose container runs
// on a node that does not exist: its log can never be read. With forged, the Job is
// not the run's (a tenant's copy of the labels).
func runningPod(t *testing.T, run *v1alpha1.PipelineRun, forged bool) {
	t.Helper()
	ctx := context.Background()
	labels := map[string]string{v1alpha1.LabelRunUID: string(run.UID), v1alpha1.LabelComponent: v1alpha1.ComponentStep,
		v1alpha1.LabelStepIndex: "0"}
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: run.Namespace, Name: run.Name + "-0-build", Labels: labels},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "step", Image: "busybox:1.37"}}}}}}
	if !forged {
		if err := controllerutil.SetControllerReference(run, job, env.Scheme); err != nil {
			t.Fatal(err)
		}
	}
	if err := env.Client.Create(ctx, job); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: run.Namespace, Name: job.Name + "-abcde", Labels: labels,
		Annotations: map[string]string{v1alpha1.AnnotationRunName: run.Name}},
		Spec: corev1.PodSpec{NodeName: "nowhere", RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "step", Image: "busybox:1.37"}}}}
	if err := controllerutil.SetControllerReference(job, pod, env.Scheme); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{Name: "step",
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}}}
	if err := env.Client.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
}

// A run is held from its creation until its record is stored, and then let go: the
// record has its spec, final status, pipeline file, commit and events.
func TestHeldUntilArchived(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := env.NewNamespace(t)
	store, _ := startArchive(t, time.Hour)
	run := newRun(t, ns, "build-1")
	g.Eventually(func(g Gomega) { g.Expect(held(g, run)).To(BeTrue()) }).Should(Succeed())
	definition(t, run, "name: app\nsteps:\n- name: build\n  commands: [make]\n")
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "build-1.1"}, Type: "Normal", Reason: "Succeeded",
		Message: "all steps passed", InvolvedObject: corev1.ObjectReference{Kind: "PipelineRun", Namespace: ns, Name: run.Name, UID: run.UID},
		FirstTimestamp: metav1.Now(), LastTimestamp: metav1.Now()}
	g.Expect(env.Client.Create(ctx, ev)).To(Succeed())
	g.Consistently(func(g Gomega) { g.Expect(held(g, run)).To(BeTrue()) }).WithTimeout(time.Second).Should(Succeed())

	finish(t, run, v1alpha1.PhaseSucceeded, v1alpha1.StepStatus{Name: "build", Phase: v1alpha1.StepSucceeded})
	g.Eventually(func(g Gomega) { g.Expect(held(g, run)).To(BeFalse()) }).WithTimeout(10 * time.Second).Should(Succeed())
	rec, err := store.Record(ctx, ns, "build-1")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rec.Phase).To(Equal(string(v1alpha1.PhaseSucceeded)))
	var doc runrecord.Document
	g.Expect(json.Unmarshal(rec.Doc, &doc)).To(Succeed())
	g.Expect(doc.PipelineFile).To(ContainSubstring("commands: [make]"))
	g.Expect(doc.Commit).To(Equal("0123456789abcdef0123"))
	g.Expect(doc.Run.Spec.RepoURL).To(Equal(run.Spec.RepoURL))
	g.Expect(doc.Events).To(ContainElement(HaveField("Message", "all steps passed")))
	g.Expect(doc.Missing).To(BeEmpty())
	g.Expect(env.Client.Delete(ctx, run)).To(Succeed())
	g.Eventually(func() bool { return apierrors.IsNotFound(env.Client.Get(ctx, client.ObjectKeyFromObject(run), run)) }).
		WithTimeout(5 * time.Second).Should(BeTrue())
}

// A deleted run whose log cannot be read completely waits for at most --hold, then
// goes; its record says what is missing.
func TestHoldIsBounded(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := env.NewNamespace(t)
	store, _ := startArchive(t, 3*time.Second)
	run := newRun(t, ns, "build-2")
	g.Eventually(func(g Gomega) { g.Expect(held(g, run)).To(BeTrue()) }).Should(Succeed())
	runningPod(t, run, false)
	g.Expect(env.Client.Delete(ctx, run)).To(Succeed())
	deleted := time.Now()
	g.Consistently(func(g Gomega) { g.Expect(held(g, run)).To(BeTrue()) }).WithTimeout(2 * time.Second).Should(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(env.Client.Get(ctx, client.ObjectKeyFromObject(run), &v1alpha1.PipelineRun{}))
	}).
		WithTimeout(15 * time.Second).Should(BeTrue())
	// deletionTimestamp has whole seconds, so the hold ends up to 1 s before 3 s.
	g.Expect(time.Since(deleted)).To(BeNumerically(">=", 2*time.Second))
	rec, err := store.RecordByUID(ctx, string(run.UID))
	g.Expect(err).NotTo(HaveOccurred())
	var doc runrecord.Document
	g.Expect(json.Unmarshal(rec.Doc, &doc)).To(Succeed())
	g.Expect(doc.Missing).To(ContainElement(ContainSubstring("stopped waiting after 3s")))
}

// A pod that copies a run's labels but is not controlled by the run's Job adds no log
// and does not hold the run.
func TestForgedPodIsIgnored(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := env.NewNamespace(t)
	store, r := startArchive(t, time.Hour)
	run := newRun(t, ns, "build-3")
	g.Eventually(func(g Gomega) { g.Expect(held(g, run)).To(BeTrue()) }).Should(Succeed())
	runningPod(t, run, true)
	g.Consistently(func() int { return r.streams.busy(string(run.UID)) }).WithTimeout(2 * time.Second).Should(BeZero())
	finish(t, run, v1alpha1.PhaseFailed)
	g.Eventually(func(g Gomega) { g.Expect(held(g, run)).To(BeFalse()) }).WithTimeout(10 * time.Second).Should(Succeed())
	streams, err := store.Streams(ctx, string(run.UID))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(streams).To(BeEmpty())
}

// A running container of a run that is still running is streamed from the cache's view
// of it, not only once the run ends.
func TestStreamsStartWhileTheRunRuns(t *testing.T) {
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, r := startArchive(t, time.Hour)
	run := newRun(t, ns, "build-4")
	g.Eventually(func(g Gomega) { g.Expect(held(g, run)).To(BeTrue()) }).Should(Succeed())
	runningPod(t, run, false)
	g.Eventually(func() int { return r.streams.busy(string(run.UID)) }).WithTimeout(10 * time.Second).Should(Equal(1))
	r.mu.Lock()
	defer r.mu.Unlock()
	g.Expect(r.caughtUp[string(run.UID)]).To(BeFalse(), "found through the cache, not the end-of-run listing")
}
