package pipelinerun

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers"
	"github.com/flow-ci/flow-ci/controllers/testenv"
	"github.com/flow-ci/flow-ci/internal/gitsource"
	"github.com/flow-ci/flow-ci/internal/render"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

var testRender = render.Config{DefaultStepImage: "busybox:test", CloneImage: "flow-ci:test"}

// loopback is where the tests' git servers listen; the default egress policy denies it.
var loopback = netip.MustParsePrefix("127.0.0.0/8")

// startManager runs a manager with the real reconciler, watching only ns, until the
// returned stop function is called (or the test ends). envtest runs no Job controller:
// tests play its part with completeJob and failJob.
func startManager(t *testing.T, ns string, configure ...func(*Reconciler)) (stop func()) {
	t.Helper()
	return startManagerAs(t, ns, env.Config, configure...)
}

// startManagerAs is startManager with the manager's own rest config: another user, or
// a wrapped transport. ns may name several namespaces, separated by commas.
func startManagerAs(t *testing.T, ns string, restCfg *rest.Config, configure ...func(*Reconciler)) (stop func()) {
	t.Helper()
	cacheOpts := controllers.CacheOptions()
	cacheOpts.DefaultNamespaces = map[string]cache.Config{}
	for _, n := range strings.Split(ns, ",") {
		cacheOpts.DefaultNamespaces[n] = cache.Config{}
	}
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:  env.Scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:   cacheOpts,
		Client:  controllers.ClientOptions(),
	})
	if err != nil {
		t.Fatal(err)
	}
	clientset, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &Reconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		PodsAPI:   clientset.CoreV1().RESTClient(),
		Recorder:  mgr.GetEventRecorder("flow-ci"),
		// The test git server listens on loopback; link-local stays refused.
		Source:          GitSource{Options: []gitsource.Option{gitsource.WithTimeout(20 * time.Second), gitsource.WithAllowedNetworks(loopback)}},
		AllowedNetworks: []netip.Prefix{loopback},
		Render:          testRender,
		Logs:            fakeLogs{},
		Lifecycle: Lifecycle{
			Watchdogs:              runstate.Watchdogs{Unschedulable: 10 * time.Minute, ImagePull: 2 * time.Minute},
			SuccessfulHistoryLimit: -1, FailedHistoryLimit: -1,
		},
	}
	for _, c := range configure {
		c(r)
	}
	// Each test runs its own manager; controller names must not collide.
	if err := r.SetupWithManager(mgr, controller.Options{SkipNameValidation: ptr.To(true)}); err != nil {
		t.Fatal(err)
	}
	return testenv.StartManager(t, mgr)
}

func getRun(g Gomega, ns, name string) *civ1alpha1.PipelineRun {
	run := &civ1alpha1.PipelineRun{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, run)).To(Succeed())
	return run
}

// jobsOf lists the run's Jobs sorted by name.
func jobsOf(g Gomega, ns string) []batchv1.Job {
	list := &batchv1.JobList{}
	g.Expect(env.Client.List(context.Background(), list, client.InNamespace(ns))).To(Succeed())
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return list.Items
}

// waitJob waits until the Job exists and returns it.
func waitJob(t *testing.T, ns, name string) *batchv1.Job {
	t.Helper()
	job := &batchv1.Job{}
	NewWithT(t).Eventually(func(g Gomega) {
		g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, job)).To(Succeed())
	}).WithTimeout(30 * time.Second).Should(Succeed())
	return job
}

// finishPod creates the pod a Job would have run and plays the kubelet: the container
// running, then terminated with exitCode.
func finishPod(t *testing.T, job *batchv1.Job, node string, exitCode int32, message string) {
	t.Helper()
	ctx := context.Background()
	// The kubelet reports the container running before it reports its end.
	pod := bindPod(t, job, node)
	phase := corev1.PodSucceeded
	if exitCode != 0 {
		phase = corev1.PodFailed
	}
	now := metav1.Now()
	pod.Status = corev1.PodStatus{Phase: phase, ContainerStatuses: []corev1.ContainerStatus{{
		Name: pod.Spec.Containers[0].Name, Image: pod.Spec.Containers[0].Image, ImageID: "sha256:test",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: exitCode, Message: message, StartedAt: now, FinishedAt: now,
			Reason: map[bool]string{true: "Completed", false: "Error"}[exitCode == 0],
		}},
	}}}
	if err := env.Client.Status().Update(ctx, pod); err != nil {
		t.Fatalf("updating pod status: %v", err)
	}
}

// completeJob plays the kubelet and the Job controller for a successful pod.
func completeJob(t *testing.T, job *batchv1.Job, node string) {
	t.Helper()
	finishPod(t, job, node, 0, "")
	setJobOutcome(t, job, batchv1.JobComplete, "")
}

// failJob plays them for a pod that exited with exitCode and logged message.
func failJob(t *testing.T, job *batchv1.Job, node string, exitCode int32, message string) {
	t.Helper()
	finishPod(t, job, node, exitCode, message)
	setJobOutcome(t, job, batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded)
}

func setJobOutcome(t *testing.T, job *batchv1.Job, outcome batchv1.JobConditionType, reason string) {
	t.Helper()
	ctx := context.Background()
	NewWithT(t).Eventually(func(g Gomega) {
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(job), job)).To(Succeed())
		now := metav1.Now()
		start := metav1.NewTime(now.Add(-time.Second))
		if job.Status.StartTime == nil { // immutable once set
			job.Status.StartTime = &start
		}
		interim, msg := batchv1.JobSuccessCriteriaMet, "Reached expected number of succeeded pods"
		if outcome == batchv1.JobFailed {
			interim, msg = batchv1.JobFailureTarget, "Job has reached the specified backoff limit"
			job.Status.Failed = 1
		} else {
			job.Status.Succeeded = 1
			job.Status.CompletionTime = &now
		}
		job.Status.Conditions = []batchv1.JobCondition{
			{Type: interim, Status: corev1.ConditionTrue, Reason: reason, Message: msg, LastTransitionTime: now, LastProbeTime: now},
			{Type: outcome, Status: corev1.ConditionTrue, Reason: reason, Message: msg, LastTransitionTime: now, LastProbeTime: now},
		}
		if outcome == batchv1.JobComplete {
			job.Status.Conditions[0].Reason, job.Status.Conditions[1].Reason = "CompletionsReached", "CompletionsReached"
		}
		g.Expect(env.Client.Status().Update(ctx, job)).To(Succeed())
	}).WithTimeout(10 * time.Second).Should(Succeed())
}

func newRunObject(ns, name, repoURL string) *civ1alpha1.PipelineRun {
	return &civ1alpha1.PipelineRun{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       civ1alpha1.PipelineRunSpec{RepoURL: repoURL},
	}
}

func createRun(t *testing.T, run *civ1alpha1.PipelineRun) {
	t.Helper()
	if err := env.Client.Create(context.Background(), run); err != nil {
		t.Fatalf("creating run: %v", err)
	}
}

// waitFinished waits for a terminal phase and returns the run.
func waitFinished(t *testing.T, ns, name string) *civ1alpha1.PipelineRun {
	t.Helper()
	var run *civ1alpha1.PipelineRun
	NewWithT(t).Eventually(func(g Gomega) {
		run = getRun(g, ns, name)
		g.Expect(run.Status.Phase.IsFinished()).To(BeTrue(), "phase %q", run.Status.Phase)
	}).WithTimeout(30 * time.Second).Should(Succeed())
	return run
}

// pinnedRun waits until the run's status names its steps, and returns it.
func pinnedRun(t *testing.T, ns, name string) *civ1alpha1.PipelineRun {
	t.Helper()
	var run *civ1alpha1.PipelineRun
	NewWithT(t).Eventually(func(g Gomega) {
		run = getRun(g, ns, name)
		g.Expect(run.Status.Steps).NotTo(BeEmpty())
	}).WithTimeout(30 * time.Second).Should(Succeed())
	return run
}

func stepJobName(run *civ1alpha1.PipelineRun, i int) string {
	return render.StepJobName(run, i, run.Status.Steps[i].Name)
}

func eventReasons(t *testing.T, ns string) []string {
	t.Helper()
	var reasons []string
	list := &eventsv1.EventList{}
	if err := env.Client.List(context.Background(), list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range list.Items {
		r := fmt.Sprintf("%s/%s", e.Type, e.Reason)
		if e.Reason == civ1alpha1.EventFailed { // the specific reason leads the note
			r += ": " + strings.SplitN(e.Note, ":", 2)[0]
		}
		reasons = append(reasons, r)
	}
	return reasons
}

// fakeLogs stands in for the kubelet's log endpoint, which envtest does not have; the
// real PodLogs is exercised by the e2e suite.
type fakeLogs struct{}

func (fakeLogs) TailLog(_ context.Context, _, pod, container string, previous bool) (string, error) {
	if previous {
		return "previous log tail of " + container + " of " + pod, nil
	}
	return "log tail of " + pod, nil
}
