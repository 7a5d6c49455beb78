//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gittest"
)

const (
	benchRuns = 10
	// benchWait bounds each half of the benchmark: 20 runs of trivial steps on 2 cores.
	benchWait = 15 * time.Minute
	// handRunLabel marks the hand-driven Jobs with their run, so the watch finds the graph.
	handRunLabel = "bench.flowci.dev/run"
)

// benchShape is a step graph that both drivers run: flow-ci from a pipeline file, the
// hand-driven baseline as bare Jobs.
type benchShape struct {
	name, title string
	steps       []benchStep
}

type benchStep struct {
	name string
	deps []string
}

func benchShapes() []benchShape {
	chain := benchShape{name: "chain", title: "5 sequential steps"}
	for i := 1; i <= 5; i++ {
		s := benchStep{name: fmt.Sprintf("s%d", i)}
		if i > 1 {
			s.deps = []string{fmt.Sprintf("s%d", i-1)}
		}
		chain.steps = append(chain.steps, s)
	}
	fan := benchShape{name: "fan", title: "1 → 4 → 1", steps: []benchStep{{name: "a"}}}
	var mid []string
	for i := 1; i <= 4; i++ {
		mid = append(mid, fmt.Sprintf("b%d", i))
		fan.steps = append(fan.steps, benchStep{name: mid[i-1], deps: []string{"a"}})
	}
	fan.steps = append(fan.steps, benchStep{name: "c", deps: mid})
	return []benchShape{chain, fan}
}

// pipelineFile is the shape as build/flow-ci.yaml. The requests are small and the same
// for the hand-driven Jobs (copied from flow-ci's), so that 20 runs fit on two cores at
// once: with the operator's default (100m each) pods would queue in the scheduler, and
// the gaps would measure the node's capacity instead of the handoff.
func (s benchShape) pipelineFile() string {
	var f strings.Builder
	fmt.Fprintf(&f, "name: %s\nresources: {cpu: 10m, memory: 32Mi}\nsteps:\n", s.name)
	for _, st := range s.steps {
		fmt.Fprintf(&f, "- name: %s\n  dependsOn: [%s]\n  commands: [echo %s]\n", st.name, strings.Join(st.deps, ", "), st.name)
	}
	return f.String()
}

// handoffs counts the steps that wait for other steps; a root waits for the clone (or
// nothing, by hand), which is not what is measured here.
func (s benchShape) handoffs() int {
	n := 0
	for _, st := range s.steps {
		if len(st.deps) > 0 {
			n++
		}
	}
	return n
}

// BenchmarkClusterHandoff measures, on the cluster TestMain deployed the operator to,
// how long flow-ci takes from a step's pod ending to the next step's Job and container,
// against Jobs driven by hand from an informer: the least a controller must do. It
// prints numbers and never fails on speed; only failed runs or missing samples fail it.
func BenchmarkClusterHandoff(b *testing.B) {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		b.Fatal(err)
	}
	// controller-runtime leaves client-side throttling off (QPS -1), so the baseline's
	// creates are not held back by the client.
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	shapes := benchShapes()
	results := map[string][]handoff{}
	start := time.Now()
	for range b.N {
		flow, res := benchFlowCI(b, shapes)
		hand := benchHandDriven(b, cs, shapes, res)
		// The operator never waits for the archive: the same runs with it stopped.
		scaleArchive(b, 0)
		down, _ := benchFlowCI(b, shapes)
		scaleArchive(b, archiveReplicas)
		for _, s := range shapes {
			results[s.name+"/flow-ci"] = append(results[s.name+"/flow-ci"], flow[s.name]...)
			results[s.name+"/hand"] = append(results[s.name+"/hand"], hand[s.name]...)
			results[s.name+"/"+archiveDown] = append(results[s.name+"/"+archiveDown], down[s.name]...)
		}
	}
	reportHandoffs(b, shapes, results)
	b.Logf("benchmark took %s", time.Since(start).Round(time.Second))
}

// benchFlowCI creates every run at once in a fresh namespace, waits for all of them to
// succeed and measures their handoffs. It also returns a step container's resources, so
// the hand-driven pods have the same shape.
func benchFlowCI(b *testing.B, shapes []benchShape) (map[string][]handoff, corev1.ResourceRequirements) {
	ctx := context.Background()
	ns := benchNamespace(b)
	root := b.TempDir()
	srv := gittest.NewHTTPServer(b, root, gittest.HTTPOptions{Addr: net.JoinHostPort(gitHost, "0")})
	for _, s := range shapes {
		repo := gittest.NewRepoIn(b, root, s.name+".git", map[string]string{"build/flow-ci.yaml": s.pipelineFile()})
		for i := range benchRuns {
			run := &civ1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("%s-%d", s.name, i)},
				Spec: civ1alpha1.PipelineRunSpec{RepoURL: srv.RepoURL(repo)}}
			if err := k8s.Create(ctx, run); err != nil {
				b.Fatal(err)
			}
		}
	}
	runs := waitRunsSucceeded(b, ns)
	edges := map[string][]edge{}
	for _, run := range runs {
		shape, _, _ := strings.Cut(run.Name, "-")
		jobOf := map[string]string{}
		for _, st := range run.Status.Steps {
			jobOf[st.Name] = st.JobName
		}
		for _, st := range run.Status.Steps {
			if len(st.DependsOn) == 0 {
				continue
			}
			e := edge{job: st.JobName}
			for _, d := range st.DependsOn {
				e.deps = append(e.deps, jobOf[d])
			}
			edges[shape] = append(edges[shape], e)
		}
	}
	out := measureShapes(b, ns, shapes, edges)
	job := &batchv1.Job{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: edges[shapes[0].name][0].job}, job); err != nil {
		b.Fatal(err)
	}
	deleteNamespace(b, ns)
	return out, job.Spec.Template.Spec.Containers[0].Resources
}

// waitRunsSucceeded waits until every run in ns has finished and fails unless all
// of them Succeeded.
func waitRunsSucceeded(b *testing.B, ns string) []civ1alpha1.PipelineRun {
	deadline := time.Now().Add(benchWait)
	for {
		list := &civ1alpha1.PipelineRunList{}
		if err := k8s.List(context.Background(), list, client.InNamespace(ns)); err != nil {
			b.Fatal(err)
		}
		var open, failed []string
		for _, r := range list.Items {
			switch {
			case !r.Status.Phase.IsFinished():
				open = append(open, r.Name)
			case r.Status.Phase != civ1alpha1.PhaseSucceeded:
				failed = append(failed, fmt.Sprintf("%s: %s %s", r.Name, r.Status.Phase, toJSON(r.Status.Conditions)))
			}
		}
		if len(failed) > 0 {
			b.Fatalf("runs did not succeed:\n%s", strings.Join(failed, "\n"))
		}
		if len(open) == 0 {
			return list.Items
		}
		if time.Now().After(deadline) {
			b.Fatalf("runs not finished after %s: %v", benchWait, open)
		}
		time.Sleep(2 * time.Second)
	}
}

// benchNamespace is newNamespace for a benchmark: restricted Pod Security, and on
// failure the objects are logged before the namespace goes.
func benchNamespace(b *testing.B) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-", Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
		"pod-security.kubernetes.io/warn":    "restricted",
	}}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if b.Failed() {
			for _, args := range [][]string{
				{"-n", ns.Name, "get", "fpr,jobs,pods,pvc", "-o", "wide"},
				{"-n", ns.Name, "get", "events", "--sort-by=.lastTimestamp"},
				{"-n", operatorNS, "logs", "-l", operatorSelector, "--prefix", "--tail=50"},
			} {
				out, err := kubectl(args...)
				b.Logf("kubectl %s:\n%s%v", strings.Join(args, " "), out, errOrEmpty(err))
			}
		}
		_ = k8s.Delete(context.Background(), ns)
	})
	return ns.Name
}

// deleteNamespace removes ns and waits until it is gone, so its pods' teardown does not
// load the node while the next half of the benchmark measures.
func deleteNamespace(b *testing.B, name string) {
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := k8s.Delete(ctx, ns); err != nil && !apierrors.IsNotFound(err) {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		if err := k8s.Get(ctx, client.ObjectKey{Name: name}, ns); apierrors.IsNotFound(err) {
			return
		}
	}
	b.Logf("namespace %s still terminating after 3m; going on", name)
}

// handDriver is the baseline: bare Jobs, and an informer on them that creates each
// Job as soon as it sees every one of its dependencies done; the least a controller
// must do. runs is written before the informer starts and only read after.
type handDriver struct {
	cs       kubernetes.Interface
	ns       string
	res      corev1.ResourceRequirements
	runs     map[string]benchShape
	finished chan error // the first failure, or nil once every Job is done

	mu        sync.Mutex
	done      map[string]bool // by Job name
	created   map[string]bool
	remaining int
}

// benchHandDriven runs every shape benchRuns times at once in a fresh namespace, on a
// PVC per run as the hand-driven baseline test does, and measures it as benchFlowCI does.
func benchHandDriven(b *testing.B, cs kubernetes.Interface, shapes []benchShape, res corev1.ResourceRequirements) map[string][]handoff {
	ctx := context.Background()
	ns := benchNamespace(b)
	d := &handDriver{cs: cs, ns: ns, res: res, runs: map[string]benchShape{}, finished: make(chan error, 1),
		done: map[string]bool{}, created: map[string]bool{}}
	edges := map[string][]edge{}
	for _, s := range shapes {
		for i := range benchRuns {
			run := fmt.Sprintf("%s-%d", s.name, i)
			d.runs[run], d.remaining = s, d.remaining+len(s.steps)
			for _, st := range s.steps {
				if len(st.deps) == 0 {
					continue
				}
				e := edge{job: run + "-" + st.name}
				for _, dep := range st.deps {
					e.deps = append(e.deps, run+"-"+dep)
				}
				edges[s.name] = append(edges[s.name], e)
			}
			pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: run},
				Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
			if err := k8s.Create(ctx, pvc); err != nil {
				b.Fatal(err)
			}
		}
	}
	stop := make(chan struct{})
	defer close(stop)
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	inf := factory.Batch().V1().Jobs().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: d.onJob, UpdateFunc: func(_, j any) { d.onJob(j) },
	}); err != nil {
		b.Fatal(err)
	}
	factory.Start(stop)
	factory.WaitForCacheSync(stop)
	d.mu.Lock()
	for run := range d.runs {
		d.startReady(run)
	}
	d.mu.Unlock()
	select {
	case err := <-d.finished:
		if err != nil {
			b.Fatal(err)
		}
	case <-time.After(benchWait):
		b.Fatalf("hand-driven Jobs not done after %s", benchWait)
	}
	out := measureShapes(b, ns, shapes, edges)
	deleteNamespace(b, ns)
	return out
}

func (d *handDriver) onJob(obj any) {
	j, ok := obj.(*batchv1.Job)
	if !ok {
		return
	}
	run := j.Labels[handRunLabel]
	if _, ok := d.runs[run]; !ok {
		return
	}
	if jobFailed(j) {
		d.finish(fmt.Errorf("Job %s failed: %s", j.Name, toJSON(j.Status.Conditions)))
		return
	}
	if jobDone(j).IsZero() {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done[j.Name] {
		return
	}
	d.done[j.Name] = true
	if d.remaining--; d.remaining == 0 {
		d.finish(nil)
	}
	d.startReady(run)
}

// startReady creates, each from its own goroutine so that none waits for another's
// request, every Job of run whose dependencies are all done. d.mu is held.
func (d *handDriver) startReady(run string) {
	for _, st := range d.runs[run].steps {
		name := run + "-" + st.name
		if d.created[name] || slices.ContainsFunc(st.deps, func(dep string) bool { return !d.done[run+"-"+dep] }) {
			continue
		}
		d.created[name] = true
		go func() {
			if _, err := d.cs.BatchV1().Jobs(d.ns).Create(context.Background(), d.job(run, st), metav1.CreateOptions{}); err != nil {
				d.finish(fmt.Errorf("creating Job %s: %w", name, err))
			}
		}()
	}
}

func (d *handDriver) finish(err error) {
	select {
	case d.finished <- err:
	default:
	}
}

// job is baseline_test.go's hand-driven Job, with flow-ci's step resources.
func (d *handDriver) job(run string, st benchStep) *batchv1.Job {
	uid := int64(65532)
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: run + "-" + st.name, Labels: map[string]string{handRunLabel: run}},
		Spec: batchv1.JobSpec{BackoffLimit: new(int32(0)), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy:                corev1.RestartPolicyNever,
			AutomountServiceAccountToken: new(false),
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: new(true), RunAsUser: &uid, RunAsGroup: &uid, FSGroup: &uid,
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			Volumes: []corev1.Volume{{Name: "w", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: run}}}},
			Containers: []corev1.Container{{
				Name: "s", Image: "localhost/busybox:local", ImagePullPolicy: corev1.PullIfNotPresent,
				Command:      []string{"/bin/sh", "-c", "echo " + st.name},
				VolumeMounts: []corev1.VolumeMount{{Name: "w", MountPath: "/w"}},
				SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: new(false),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
				Resources: d.res,
			}},
		}}},
	}
}
