package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
)

// nullController is the loaded floor: the least a controller must do per handoff. An
// informer sees a step Job complete; a worker creates the run's next step Job and
// writes the run's status once; nothing else (no clone, no definition, no events).
// Driven by the same completer as the operator, it measures what the API server,
// etcd and the completer cost at the same load.
type nullController struct {
	cs      kubernetes.Interface
	c       client.Client
	shape   shape
	queue   chan string
	started func(run string)

	mu        sync.Mutex
	completed map[string]map[int]bool // run → steps completed
}

func startNullController(tb testing.TB, ns string, sh shape, workers int) (n *nullController, stop func()) {
	tb.Helper()
	cs, err := kubernetes.NewForConfig(harnessConfig())
	if err != nil {
		tb.Fatal(err)
	}
	c, err := client.New(harnessConfig(), client.Options{Scheme: scheme})
	if err != nil {
		tb.Fatal(err)
	}
	n = &nullController{cs: cs, c: c, shape: sh, queue: make(chan string, 1<<14), completed: map[string]map[int]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	if _, err := factory.Batch().V1().Jobs().Informer().AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		UpdateFunc: func(oldObj, newObj any) {
			if !complete(oldObj.(*batchv1.Job)) && complete(newObj.(*batchv1.Job)) {
				n.queue <- "done/" + newObj.(*batchv1.Job).Name
			}
		},
	}); err != nil {
		tb.Fatal(err)
	}
	// A new run starts when the cell driver has created it (the operator's watch of runs
	// is not part of the floor: its informer costs the same for both).
	n.started = func(run string) { n.queue <- "start/" + run }
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case item := <-n.queue:
					kind, name, _ := strings.Cut(item, "/")
					var err error
					if kind == "start" {
						err = n.createStep(ctx, ns, name, 0)
					} else {
						err = n.handoff(ctx, ns, name)
					}
					if err != nil && ctx.Err() == nil {
						tb.Errorf("null controller: %v", err)
					}
				}
			}
		})
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	var once sync.Once
	return n, func() { once.Do(func() { cancel(); factory.Shutdown(); wg.Wait() }) }
}

func complete(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// handoff creates the steps the completed Job made ready and writes the run's status
// once.
func (n *nullController) handoff(ctx context.Context, ns, jobName string) error {
	run, idx, _ := strings.Cut(jobName, "-s")
	i, _ := strconv.Atoi(idx)
	n.mu.Lock()
	if n.completed[run] == nil {
		n.completed[run] = map[int]bool{}
	}
	done := n.completed[run]
	done[i] = true
	ready, ended := n.shape.readyAfter(i, done), len(done)
	n.mu.Unlock()
	steps := n.shape.steps()
	status := fmt.Sprintf(`{"status":{"progress":"%d/%d"}}`, ended, steps)
	if ended == steps {
		status = fmt.Sprintf(`{"status":{"progress":"%d/%d","phase":"Succeeded"}}`, steps, steps)
	}
	for _, k := range ready {
		if err := n.createStep(ctx, ns, run, k); err != nil {
			return err
		}
	}
	obj := &civ1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: run}}
	return n.c.Status().Patch(ctx, obj, client.RawPatch(types.MergePatchType, []byte(status)))
}

func (n *nullController) createStep(ctx context.Context, ns, run string, i int) error {
	labels := map[string]string{civ1alpha1.LabelRun: run, civ1alpha1.LabelComponent: civ1alpha1.ComponentStep, civ1alpha1.LabelStepIndex: strconv.Itoa(i)}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-s%d", run, i), Namespace: ns, Labels: labels},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "step", Image: "busybox:bench", Command: []string{"sh", "-c", "echo " + strconv.Itoa(i)}}},
		}}},
	}
	_, err := n.cs.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
	return err
}

// sweep is the plain-client floor: loops concurrent loops of one Job create plus one
// status update, with no watch and no completer. Its rate is the most this API server
// and etcd take of the handoff's two writes.
type sweep struct {
	Loops     int     `json:"loops"`
	Ops       int     `json:"operations"`
	PerMinute float64 `json:"perMinute"`
	P50Millis float64 `json:"p50Millis"`
	P99Millis float64 `json:"p99Millis"`
}

func measureSweep(tb testing.TB, loops, total int) sweep {
	tb.Helper()
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(harnessConfig())
	if err != nil {
		tb.Fatal(err)
	}
	ns := newNamespace(tb, fmt.Sprintf("bench-floor-%d", loops))
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	for l := range loops {
		wg.Go(func() {
			for i := l; i < total; i += loops {
				job := &batchv1.Job{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("floor-%05d", i), Namespace: ns},
					Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
						Containers: []corev1.Container{{Name: "step", Image: "busybox:bench", Command: []string{"sh", "-c", "echo 0"}}}}}},
				}
				t0 := time.Now()
				created, err := cs.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
				if err == nil {
					err = markComplete(ctx, cs, created)
				}
				if err != nil {
					tb.Errorf("floor: %v", err)
					return
				}
				mu.Lock()
				lat = append(lat, time.Since(t0))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	q := quantilesOf(lat)
	return sweep{Loops: loops, Ops: len(lat), PerMinute: float64(len(lat)) / wall.Minutes(), P50Millis: q.P50, P99Millis: q.P99}
}
