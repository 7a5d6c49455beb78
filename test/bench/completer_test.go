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
	"k8s.io/apimachinery/pkg/types"
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
	succeeded time.Time // when the status update adding SuccessCriteriaMet returned
	completed time.Time // when the status update marking it Complete returned
}

// completer plays the scheduler, the kubelet and the Job controller, which envtest does
// not run, with their writes and the shapes of what they write (kubelet_test.go). For
// every Job it sees it creates the pod with the Job controller's finalizer, bound to a
// node; marks the Job active; sends the kubelet's three pod status updates (creating,
// running and ready, succeeded), marking the Job ready in between; then counts the
// success as the Job controller does: uncounted, the pod's finalizer removed, succeeded
// with SuccessCriteriaMet, Complete. It records when each Job was seen, met its
// success criteria and completed, and how long its queue got.
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
	err := c.run(ctx, job)
	if err != nil {
		c.mu.Lock()
		c.errs = append(c.errs, fmt.Errorf("job %s: %w", job.Name, err))
		c.mu.Unlock()
	}
}

// run drives the Job's pod and the Job to Complete, in the order the cluster writes.
func (c *completer) run(ctx context.Context, job *batchv1.Job) error {
	pod := jobtest.PodFor(job)
	pod.Spec.NodeName, pod.Finalizers = benchNode, []string{jobTracking}
	pod, err := c.cs.CoreV1().Pods(job.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating pod: %w", err)
	}
	start := time.Now()
	pods, jobs := podStatuses(pod, start, start), jobStatuses(pod.UID, start, start)
	steps := []func() error{
		func() error { return c.jobStatus(ctx, job, jobs[0]) },
		func() error { return c.podStatus(ctx, pod, pods[0]) },
		func() error { return c.podStatus(ctx, pod, pods[1]) },
		func() error { return c.jobStatus(ctx, job, jobs[1]) },
		func() error {
			pods, jobs = podStatuses(pod, start, time.Now()), jobStatuses(pod.UID, start, time.Now())
			return c.podStatus(ctx, pod, pods[2])
		},
		func() error { return c.jobStatus(ctx, job, jobs[2]) },
		func() error {
			patch := []byte(`{"metadata":{"finalizers":null}}`)
			_, err := c.cs.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{})
			return err
		},
		func() error { return c.jobStatus(ctx, job, jobs[3]) },
		func() error { c.mark(job.Name, func(r *jobRecord) { r.succeeded = time.Now() }); return nil },
		func() error { return c.jobStatus(ctx, job, jobs[4]) },
		func() error { c.mark(job.Name, func(r *jobRecord) { r.completed = time.Now() }); return nil },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

func (c *completer) mark(job string, f func(*jobRecord)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c.jobs[job])
}

// podStatus writes the pod's status as the kubelet does, with a full update.
func (c *completer) podStatus(ctx context.Context, pod *corev1.Pod, st corev1.PodStatus) error {
	pod.Status = st
	updated, err := c.cs.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("updating pod status: %w", err)
	}
	*pod = *updated
	return nil
}

// jobStatus writes the Job's status as the Job controller does, retrying a conflict
// on a fresh copy (the operator never writes a Job, but a test might).
func (c *completer) jobStatus(ctx context.Context, job *batchv1.Job, st batchv1.JobStatus) error {
	for attempt := 0; ; attempt++ {
		job.Status = *st.DeepCopy()
		updated, err := c.cs.BatchV1().Jobs(job.Namespace).UpdateStatus(ctx, job, metav1.UpdateOptions{})
		if err == nil {
			*job = *updated
			return nil
		}
		if !apierrors.IsConflict(err) || attempt == 5 {
			return fmt.Errorf("updating job status: %w", err)
		}
		if job, err = c.cs.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{}); err != nil {
			return err
		}
	}
}

// markComplete sets the final status the Job controller writes for a Job whose one pod
// succeeded, in one write (the plain-client sweep's second write).
func markComplete(ctx context.Context, cs kubernetes.Interface, job *batchv1.Job) error {
	now := time.Now()
	job.Status = jobStatuses("", now.Add(-time.Millisecond), now)[4]
	job.Status.UncountedTerminatedPods = nil
	_, err := cs.BatchV1().Jobs(job.Namespace).UpdateStatus(ctx, job, metav1.UpdateOptions{})
	return err
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
