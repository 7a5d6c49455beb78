package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/jobtest"
)

// benchNode is the node every pod "runs" on; step Jobs are pinned to the clone's node.
const benchNode = "bench-node"

// jobRecord is what the completer saw of one Job.
type jobRecord struct {
	run       string    // the run's name (LabelRun; bench run names always fit a label)
	component string    // clone or step
	step      int       // step index, -1 for the clone
	observed  time.Time // first seen through the watch
	completed time.Time // when the status update marking it Complete returned
}

// completer plays the kubelet and the Job controller, which envtest does not run. For
// every Job it sees it creates the pod, moves it Pending → Running → Succeeded with the
// status updates a kubelet sends, then marks the Job Complete as the Job controller
// would. It records when each Job was seen and completed, and how long its queue got.
type completer struct {
	cs kubernetes.Interface

	mu       sync.Mutex
	jobs     map[string]*jobRecord
	errs     []error
	maxQueue atomic.Int64
}

// startCompleter watches Jobs in ns with workers goroutines until stop is called.
func startCompleter(tb testing.TB, ns string, workers int) (c *completer, stop func()) {
	tb.Helper()
	cs, err := kubernetes.NewForConfig(harnessConfig())
	if err != nil {
		tb.Fatal(err)
	}
	c = &completer{cs: cs, jobs: map[string]*jobRecord{}}
	ctx, cancel := context.WithCancel(context.Background())
	queue := make(chan *batchv1.Job, 1<<14)
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	inf := factory.Batch().V1().Jobs().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		job := obj.(*batchv1.Job)
		if c.observe(job) {
			queue <- job
			if n := int64(len(queue)); n > c.maxQueue.Load() {
				c.maxQueue.Store(n)
			}
		}
	}}); err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case job := <-queue:
					c.complete(ctx, job)
				}
			}
		})
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			factory.Shutdown()
			wg.Wait()
		})
	}
	tb.Cleanup(stop)
	return c, stop
}

// observe records a Job the first time it is seen; false when it was seen before.
func (c *completer) observe(job *batchv1.Job) bool {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.jobs[job.Name]; ok {
		return false
	}
	step := -1
	if job.Labels[v1alpha1.LabelComponent] == v1alpha1.ComponentStep {
		step, _ = strconv.Atoi(job.Labels[v1alpha1.LabelStepIndex])
	}
	c.jobs[job.Name] = &jobRecord{run: job.Labels[v1alpha1.LabelRun], component: job.Labels[v1alpha1.LabelComponent], step: step, observed: now}
	return true
}

func (c *completer) complete(ctx context.Context, job *batchv1.Job) {
	err := c.runPod(ctx, job)
	if err == nil {
		err = markComplete(ctx, c.cs, job.DeepCopy())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.errs = append(c.errs, fmt.Errorf("job %s: %w", job.Name, err))
		return
	}
	c.jobs[job.Name].completed = time.Now()
}

// runPod creates the Job's pod on benchNode and sends the kubelet's three status
// updates: scheduled and pending, running, succeeded.
func (c *completer) runPod(ctx context.Context, job *batchv1.Job) error {
	pod := jobtest.PodFor(job)
	pod.Spec.NodeName = benchNode
	pod, err := c.cs.CoreV1().Pods(job.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating pod: %w", err)
	}
	ctr := pod.Spec.Containers[0]
	now := metav1.Now()
	scheduled := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now}
	states := []corev1.PodStatus{
		{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{scheduled}, ContainerStatuses: []corev1.ContainerStatus{{Name: ctr.Name, Image: ctr.Image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}},
		{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{scheduled}, ContainerStatuses: []corev1.ContainerStatus{{Name: ctr.Name, Image: ctr.Image,
			ImageID: "sha256:bench", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}}},
		{Phase: corev1.PodSucceeded, Conditions: []corev1.PodCondition{scheduled}, ContainerStatuses: []corev1.ContainerStatus{{Name: ctr.Name, Image: ctr.Image,
			ImageID: "sha256:bench", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now}}}}},
	}
	for _, st := range states {
		pod.Status = st
		if pod, err = c.cs.CoreV1().Pods(job.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("updating pod status: %w", err)
		}
	}
	return nil
}

// markComplete sets the status the real Job controller writes for a Job whose one pod
// succeeded: the API server requires SuccessCriteriaMet before Complete, and times.
func markComplete(ctx context.Context, cs kubernetes.Interface, job *batchv1.Job) error {
	for attempt := 0; ; attempt++ {
		now := metav1.Now()
		start := metav1.NewTime(now.Add(-time.Millisecond))
		job.Status.StartTime, job.Status.CompletionTime, job.Status.Succeeded = &start, &now, 1
		msg := "Reached expected number of succeeded pods"
		job.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, Reason: "CompletionsReached", Message: msg, LastTransitionTime: now, LastProbeTime: now},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, Reason: "CompletionsReached", Message: msg, LastTransitionTime: now, LastProbeTime: now},
		}
		_, err := cs.BatchV1().Jobs(job.Namespace).UpdateStatus(ctx, job, metav1.UpdateOptions{})
		if !apierrors.IsConflict(err) || attempt == 5 {
			return err
		}
		if job, err = cs.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{}); err != nil {
			return err
		}
	}
}

// records returns a copy of what was recorded, and the errors met.
func (c *completer) records() (map[string]jobRecord, []error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]jobRecord, len(c.jobs))
	for k, v := range c.jobs {
		out[k] = *v
	}
	return out, append([]error(nil), c.errs...)
}
