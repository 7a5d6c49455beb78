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
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers"
	"github.com/flow-ci/flow-ci/controllers/pipelinerun"
	"github.com/flow-ci/flow-ci/internal/gitsource"
	"github.com/flow-ci/flow-ci/internal/pipeline"
)

// nullController is the loaded floor: the least work any correct controller must do
// at the same load. It watches what the operator watches (runs, Jobs, pods and PVCs,
// through the operator's own cache options and trims), creates the same Jobs per run
// (the clone, then each step as the steps it waits for meet their success criteria),
// owned by the run, and writes the run's status once when it starts and once per
// handoff. Handoffs go ahead of starts, as the operator's priority queue does, on as
// many workers as the operator has. With readGit (the floor-git variant, the operator's
// floor) it first does the git work no correct controller can skip, off its workers
// and as many at once as the operator's fetch pool: resolve the run's branch and read
// its pipeline file at that commit, from the same server, with the same library. It
// renders no definition, keeps no workspace, records no event and deletes nothing:
// whatever the operator does beyond it is the operator's own cost. Without readGit it
// is the floor of the operator with a stub source, which reads no git either.
type nullController struct {
	c       client.Client
	shape   shape
	readGit bool
	fetches chan struct{} // the slots of concurrent git reads

	handoffs, starts chan string

	mu        sync.Mutex
	uids      map[string]types.UID // run name → UID
	seen      map[string]bool      // Jobs whose success was handled
	completed map[string]map[int]bool
}

func startNullController(tb testing.TB, ns string, sh shape, readGit bool) (n *nullController, stop func()) {
	tb.Helper()
	c, err := client.New(harnessConfig(), client.Options{Scheme: scheme})
	if err != nil {
		tb.Fatal(err)
	}
	opts := controllers.CacheOptions()
	opts.Scheme, opts.DefaultNamespaces = scheme, map[string]cache.Config{ns: {}}
	informers, err := cache.New(harnessConfig(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	n = &nullController{c: c, shape: sh, readGit: readGit, fetches: make(chan struct{}, pipelinerun.DefaultFetchers),
		handoffs: make(chan string, 1<<14), starts: make(chan string, 1<<14),
		uids: map[string]types.UID{}, seen: map[string]bool{}, completed: map[string]map[int]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	n.watch(ctx, tb, informers)
	tb.Cleanup(cancel)
	go func() { _ = informers.Start(ctx) }()
	if !informers.WaitForCacheSync(ctx) {
		tb.Fatal("the null controller's cache did not sync")
	}
	var wg sync.WaitGroup
	for range pipelinerun.DefaultMaxConcurrentReconciles {
		wg.Go(func() { n.work(ctx, tb, ns) })
	}
	var once sync.Once
	return n, func() { once.Do(func() { cancel(); wg.Wait() }) }
}

// watch registers the four informers: a new run starts; a Job that met its success
// criteria hands off; pods and PVCs are watched (and decoded) as the operator does.
func (n *nullController) watch(ctx context.Context, tb testing.TB, informers cache.Cache) {
	handlers := map[client.Object]toolscache.ResourceEventHandlerFuncs{
		&civ1alpha1.PipelineRun{}: {AddFunc: func(obj any) {
			run := obj.(*civ1alpha1.PipelineRun)
			n.mu.Lock()
			n.uids[run.Name] = run.UID
			n.mu.Unlock()
			if !n.readGit {
				n.starts <- run.Name
				return
			}
			go n.fetch(ctx, tb, run)
		}},
		&batchv1.Job{}: {UpdateFunc: func(_, obj any) {
			job := obj.(*batchv1.Job)
			n.mu.Lock()
			fresh := succeeded(job) && !n.seen[job.Name]
			n.seen[job.Name] = n.seen[job.Name] || fresh
			n.mu.Unlock()
			if fresh {
				n.handoffs <- job.Name
			}
		}},
		&corev1.Pod{}:                   {},
		&corev1.PersistentVolumeClaim{}: {},
	}
	for obj, h := range handlers {
		inf, err := informers.GetInformer(ctx, obj)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := inf.AddEventHandler(h); err != nil {
			tb.Fatal(err)
		}
	}
}

// fetch resolves the run's branch and reads its pipeline file, in one of the fetch
// slots, and then queues the run's start.
func (n *nullController) fetch(ctx context.Context, tb testing.TB, run *civ1alpha1.PipelineRun) {
	select {
	case n.fetches <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-n.fetches }()
	opts := []gitsource.Option{gitsource.WithAllowedNetworks(loopback)}
	commit, err := gitsource.ResolveCommit(ctx, run.Spec.RepoURL, run.Spec.Branch, "", nil, opts...)
	if err == nil {
		_, err = gitsource.ReadFile(ctx, run.Spec.RepoURL, commit, run.Spec.PipelinePath, pipeline.MaxFileSize, nil, opts...)
	}
	if err != nil {
		if ctx.Err() == nil {
			tb.Errorf("null controller: reading %s: %v", run.Spec.RepoURL, err)
		}
		return
	}
	n.starts <- run.Name
}

// work takes a handoff whenever one waits, and a start only when none does.
func (n *nullController) work(ctx context.Context, tb testing.TB, ns string) {
	for {
		var err error
		select {
		case job := <-n.handoffs:
			err = n.handoff(ctx, ns, job)
		default:
			select {
			case <-ctx.Done():
				return
			case job := <-n.handoffs:
				err = n.handoff(ctx, ns, job)
			case run := <-n.starts:
				err = n.start(ctx, ns, run)
			}
		}
		if err != nil && ctx.Err() == nil {
			tb.Errorf("null controller: %v", err)
		}
	}
}

// succeeded is the earliest sign of a Job's success: SuccessCriteriaMet, or Complete.
func succeeded(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobSuccessCriteriaMet || c.Type == batchv1.JobComplete) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// start creates the run's clone Job and writes that the run started.
func (n *nullController) start(ctx context.Context, ns, run string) error {
	if err := n.createJob(ctx, ns, run, -1); err != nil {
		return err
	}
	return n.writeStatus(ctx, ns, run, fmt.Sprintf(`{"status":{"phase":"Running","progress":"0/%d"}}`, n.shape.steps()))
}

// handoff creates the steps the Job's success made ready and writes the run's status
// once.
func (n *nullController) handoff(ctx context.Context, ns, jobName string) error {
	run, idx, _ := strings.Cut(jobName, "-s")
	i, err := strconv.Atoi(idx)
	if err != nil {
		run, i = strings.TrimSuffix(jobName, "-clone"), -1
	}
	n.mu.Lock()
	if n.completed[run] == nil {
		n.completed[run] = map[int]bool{}
	}
	done := n.completed[run]
	var ready []int
	if i < 0 {
		ready = n.shape.roots()
	} else {
		done[i] = true
		ready = n.shape.readyAfter(i, done)
	}
	ended := len(done)
	n.mu.Unlock()
	for _, k := range ready {
		if err := n.createJob(ctx, ns, run, k); err != nil {
			return err
		}
	}
	steps := n.shape.steps()
	status := fmt.Sprintf(`{"status":{"progress":"%d/%d"}}`, ended, steps)
	if ended == steps {
		status = fmt.Sprintf(`{"status":{"progress":"%d/%d","phase":"Succeeded"}}`, steps, steps)
	}
	return n.writeStatus(ctx, ns, run, status)
}

func (n *nullController) writeStatus(ctx context.Context, ns, run, patch string) error {
	obj := &civ1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: run}}
	return n.c.Status().Patch(ctx, obj, client.RawPatch(types.MergePatchType, []byte(patch)))
}

// createJob creates step i's Job (the clone for -1), owned by the run and labelled
// with its UID, as any controller must for the garbage collector and its own cache.
func (n *nullController) createJob(ctx context.Context, ns, run string, i int) error {
	n.mu.Lock()
	uid := n.uids[run]
	n.mu.Unlock()
	name, component := fmt.Sprintf("%s-s%d", run, i), civ1alpha1.ComponentStep
	if i < 0 {
		name, component = run+"-clone", civ1alpha1.ComponentClone
	}
	labels := map[string]string{civ1alpha1.LabelRun: run, civ1alpha1.LabelRunUID: string(uid), civ1alpha1.LabelComponent: component}
	if i >= 0 {
		labels[civ1alpha1.LabelStepIndex] = strconv.Itoa(i)
	}
	owner := metav1.NewControllerRef(&civ1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: run, UID: uid}},
		civ1alpha1.GroupVersion.WithKind("PipelineRun"))
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels, OwnerReferences: []metav1.OwnerReference{*owner}},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{civ1alpha1.AnnotationRunName: run}},
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{Name: "step", Image: "busybox:bench", Command: []string{"sh", "-c", "echo " + strconv.Itoa(i)}}}},
		}},
	}
	return n.c.Create(ctx, job)
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
