package bench

import (
	"context"
	"fmt"
	"sync"
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

// benchNode is the node the clone pod "ran" on; every step Job must be pinned to it.
const benchNode = "bench-node"

// jobRecord is what the completer saw of one Job.
type jobRecord struct {
	run       string // the run's name (LabelRun; bench run names always fit a label)
	component string // clone or step
	step      int    // step index, -1 for the clone
	created   time.Time
	observed  time.Time // first seen through the watch: sub-millisecond, unlike created
	completed time.Time // when the status update marking it Complete returned
}

// completer plays the kubelet and the Job controller, which envtest does not run: every
// Job is marked Complete as soon as it is seen (after delay). Only the clone Job gets a
// pod, since the operator pins steps to the clone pod's node; step Jobs get none, to
// keep the API load on what the operator itself causes (the operator reads a step pod
// only for exit codes and log tails of failed steps).
type completer struct {
	cs    kubernetes.Interface
	delay time.Duration

	mu   sync.Mutex
	jobs map[string]*jobRecord
	errs []error
}

// startCompleter watches Jobs in ns until stop is called or the test ends.
func startCompleter(tb testing.TB, ns string, delay time.Duration, workers int) (c *completer, stop func()) {
	tb.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	c = &completer{cs: cs, delay: delay, jobs: map[string]*jobRecord{}}
	ctx, cancel := context.WithCancel(context.Background())
	queue := make(chan *batchv1.Job, 4096)
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	inf := factory.Batch().V1().Jobs().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		job := obj.(*batchv1.Job)
		if c.observe(job) {
			queue <- job
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
		_, _ = fmt.Sscanf(job.Labels[v1alpha1.LabelStepIndex], "%d", &step)
	}
	c.jobs[job.Name] = &jobRecord{
		run: job.Labels[v1alpha1.LabelRun], component: job.Labels[v1alpha1.LabelComponent], step: step,
		created: job.CreationTimestamp.Time, observed: now,
	}
	return true
}

func (c *completer) complete(ctx context.Context, job *batchv1.Job) {
	if c.delay > 0 {
		time.Sleep(c.delay)
	}
	var err error
	if job.Labels[v1alpha1.LabelComponent] == v1alpha1.ComponentClone {
		err = c.finishPod(ctx, job)
	}
	if err == nil {
		err = c.markComplete(ctx, job.DeepCopy())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.errs = append(c.errs, fmt.Errorf("job %s: %w", job.Name, err))
		return
	}
	c.jobs[job.Name].completed = time.Now()
}

// finishPod creates the Job's pod on benchNode, already Succeeded.
func (c *completer) finishPod(ctx context.Context, job *batchv1.Job) error {
	pod := jobtest.PodFor(job)
	pod.Spec.NodeName = benchNode
	pod, err := c.cs.CoreV1().Pods(job.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating pod: %w", err)
	}
	now := metav1.Now()
	ctr := pod.Spec.Containers[0]
	pod.Status = corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{
		Name: ctr.Name, Image: ctr.Image, ImageID: "sha256:bench",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now,
		}},
	}}}
	if _, err := c.cs.CoreV1().Pods(job.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating pod status: %w", err)
	}
	return nil
}

// markComplete sets the status the real Job controller writes for a Job whose one pod
// succeeded: the API server requires SuccessCriteriaMet before Complete, and times.
func (c *completer) markComplete(ctx context.Context, job *batchv1.Job) error {
	for attempt := 0; ; attempt++ {
		now := metav1.Now()
		start := metav1.NewTime(now.Add(-time.Millisecond))
		job.Status.StartTime, job.Status.CompletionTime, job.Status.Succeeded = &start, &now, 1
		msg := "Reached expected number of succeeded pods"
		job.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, Reason: "CompletionsReached", Message: msg, LastTransitionTime: now, LastProbeTime: now},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, Reason: "CompletionsReached", Message: msg, LastTransitionTime: now, LastProbeTime: now},
		}
		_, err := c.cs.BatchV1().Jobs(job.Namespace).UpdateStatus(ctx, job, metav1.UpdateOptions{})
		if !apierrors.IsConflict(err) || attempt == 5 {
			return err
		}
		if job, err = c.cs.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{}); err != nil {
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
