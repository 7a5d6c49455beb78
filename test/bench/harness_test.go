package bench

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"net/netip"

	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers"
	"github.com/flow-ci/flow-ci/controllers/pipelinerun"
	"github.com/flow-ci/flow-ci/internal/gitsource"
	"github.com/flow-ci/flow-ci/internal/render"
)

// harnessConfig is the config of the harness's own clients (completer, floor, run
// creation): envtest's, whose client-side rate limit is far above what is measured.
func harnessConfig() *rest.Config { return rest.CopyConfig(cfg) }

// operatorConfig is the operator's config, as cmd/manager builds it: the default
// client-side QPS and burst, and a transport that counts into counts.
func operatorConfig(counts *apiCounts) *rest.Config {
	c := countingConfig(cfg, counts)
	c.QPS, c.Burst = pipelinerun.DefaultQPS, pipelinerun.DefaultBurst
	return c
}

// startManager runs the real reconciler with the operator's default flags, its requests
// counted in counts, until the returned stop is called. stub replaces git with
// stubSource; workers, when not 0, replaces the default number of reconcile workers.
// namespaces limits its cache (none: cluster-wide, as the operator runs).
func startManager(tb testing.TB, counts *apiCounts, stub bool, workers int, namespaces ...string) (mgr ctrl.Manager, stop func()) {
	tb.Helper()
	cacheOpts := controllers.CacheOptions()
	if len(namespaces) > 0 {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			cacheOpts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	mgr, err := ctrl.NewManager(operatorConfig(counts), ctrl.Options{
		Scheme:  scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:   cacheOpts,
		Client:  controllers.ClientOptions(),
	})
	if err != nil {
		tb.Fatal(err)
	}
	var source pipelinerun.Source = pipelinerun.GitSource{Options: []gitsource.Option{gitsource.WithAllowedNetworks(loopback)}}
	if stub {
		source = stubSource{}
	}
	clientset, err := kubernetes.NewForConfig(mgr.GetConfig())
	if err != nil {
		tb.Fatal(err)
	}
	r := &pipelinerun.Reconciler{
		Client:          mgr.GetClient(),
		APIReader:       mgr.GetAPIReader(),
		PodsAPI:         clientset.CoreV1().RESTClient(),
		Recorder:        mgr.GetEventRecorder("flow-ci"),
		Source:          source,
		Render:          render.Config{DefaultStepImage: "busybox:bench", CloneImage: "flow-ci:bench"},
		AllowedNetworks: []netip.Prefix{loopback},
		// Keep every finished run: the benchmark counts them.
		Lifecycle: pipelinerun.Lifecycle{SuccessfulHistoryLimit: -1, FailedHistoryLimit: -1, PendingTimeout: 5 * time.Minute},
	}
	// Every scenario runs its own manager: controller names repeat.
	if workers == 0 {
		workers = pipelinerun.DefaultMaxConcurrentReconciles
	}
	opts := controller.Options{MaxConcurrentReconciles: workers, SkipNameValidation: ptr.To(true)}
	if err := r.SetupWithManager(mgr, opts); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				tb.Errorf("manager: %v", err)
			}
		})
	}
	tb.Cleanup(stop)
	return mgr, stop
}

func newNamespace(tb testing.TB, prefix string) string {
	tb.Helper()
	return packageCluster().newNamespace(tb, prefix)
}

func (cl *cluster) newNamespace(tb testing.TB, prefix string) string {
	tb.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := cl.c.Create(context.Background(), ns); err != nil {
		tb.Fatalf("creating namespace: %v", err)
	}
	return ns.Name
}

// createRuns creates n runs in ns, run i of url(i), with a few parallel clients, as a
// burst of pushes would, and returns their names.
func createRuns(tb testing.TB, ns string, n int, url func(int) string) []string {
	tb.Helper()
	names := make([]string, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				names[i] = fmt.Sprintf("run-%04d", i)
				run := &civ1alpha1.PipelineRun{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: names[i]},
					Spec:       civ1alpha1.PipelineRunSpec{RepoURL: url(i)},
				}
				if err := k8sClient.Create(context.Background(), run); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatalf("creating run: %v", err)
	}
	return names
}

// waitRuns waits until every run in ns is finished or timeout passes, and returns the
// time it saw them all finished and the number that Succeeded. It reads a watch-fed
// cache: polling LISTs of hundreds of runs would load the API server it measures.
func waitRuns(tb testing.TB, ns string, n int, timeout time.Duration) (time.Time, int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	runs, err := cache.New(harnessConfig(), cache.Options{Scheme: scheme, DefaultNamespaces: map[string]cache.Config{ns: {}}})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := runs.GetInformer(ctx, &civ1alpha1.PipelineRun{}); err != nil {
		tb.Fatal(err)
	}
	go func() { _ = runs.Start(ctx) }()
	if !runs.WaitForCacheSync(ctx) {
		tb.Fatalf("%s: the runs cache did not sync", ns)
	}
	for {
		list := &civ1alpha1.PipelineRunList{}
		if err := runs.List(ctx, list); err != nil {
			tb.Fatalf("%s: after %s: listing runs: %v", ns, timeout, err)
		}
		finished, succeeded := 0, 0
		for _, r := range list.Items {
			if r.Labels[historyLabel] != "" {
				continue
			}
			if r.Status.Phase.IsFinished() {
				finished++
			}
			if r.Status.Phase == civ1alpha1.PhaseSucceeded {
				succeeded++
			}
		}
		if finished == n {
			return time.Now(), succeeded
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("%s: after %s, %d of %d runs finished (%d succeeded)", ns, timeout, finished, n, succeeded)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
