package bench

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers"
	"github.com/flow-ci/flow-ci/controllers/pipelinerun"
	"github.com/flow-ci/flow-ci/internal/gitsource"
	"github.com/flow-ci/flow-ci/internal/gittest"
	"github.com/flow-ci/flow-ci/internal/render"
)

// loopback is where the benchmark's git server listens.
var loopback = netip.MustParsePrefix("127.0.0.0/8")

// gitServer serves one repository per pipeline length, each with a build/flow-ci.yaml
// of that many `echo i` steps.
type gitServer struct {
	tb   testing.TB
	srv  *gittest.HTTPServer
	root string

	mu    sync.Mutex
	repos map[int]string
}

func newGitServer(tb testing.TB) *gitServer {
	root := tb.TempDir()
	return &gitServer{tb: tb, root: root, srv: gittest.NewHTTPServer(tb, root, gittest.HTTPOptions{}), repos: map[int]string{}}
}

// repoURL returns the URL of the repository whose pipeline has steps steps.
func (g *gitServer) repoURL(steps int) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if url, ok := g.repos[steps]; ok {
		return url
	}
	repo := gittest.NewRepoIn(g.tb, g.root, fmt.Sprintf("steps%d.git", steps), map[string]string{"build/flow-ci.yaml": pipelineYAML(steps)})
	g.repos[steps] = g.srv.RepoURL(repo)
	return g.repos[steps]
}

func pipelineYAML(steps int) string {
	var b strings.Builder
	b.WriteString("name: bench\nsteps:\n")
	for i := range steps {
		fmt.Fprintf(&b, "- name: s%d\n  commands:\n  - echo %d\n", i, i)
	}
	return b.String()
}

// startManager runs the real reconciler with maxConcurrent workers, its requests
// counted in counts, until the returned stop is called. namespaces limits its cache
// (none: cluster-wide, as the operator runs).
func startManager(tb testing.TB, counts *apiCounts, maxConcurrent int, namespaces ...string) (mgr ctrl.Manager, stop func()) {
	tb.Helper()
	cacheOpts := controllers.CacheOptions()
	if len(namespaces) > 0 {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			cacheOpts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	mgr, err := ctrl.NewManager(countingConfig(cfg, counts), ctrl.Options{
		Scheme:  scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:   cacheOpts,
		Client:  controllers.ClientOptions(),
	})
	if err != nil {
		tb.Fatal(err)
	}
	r := &pipelinerun.Reconciler{
		Client:          mgr.GetClient(),
		APIReader:       mgr.GetAPIReader(),
		Recorder:        mgr.GetEventRecorder("flow-ci"),
		Source:          pipelinerun.GitSource{Options: []gitsource.Option{gitsource.WithAllowedNetworks(loopback)}},
		AllowedNetworks: []netip.Prefix{loopback},
		Render:          render.Config{DefaultStepImage: "busybox:bench", CloneImage: "flow-ci:bench"},
		// Keep every finished run: the memory scenario needs the history.
		Lifecycle: pipelinerun.Lifecycle{SuccessfulHistoryLimit: -1, FailedHistoryLimit: -1},
	}
	// Every scenario runs its own manager: controller names repeat.
	opts := controller.Options{MaxConcurrentReconciles: maxConcurrent, SkipNameValidation: ptr.To(true)}
	if err := r.SetupWithManager(context.Background(), mgr, opts); err != nil {
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
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := k8sClient.Create(context.Background(), ns); err != nil {
		tb.Fatalf("creating namespace: %v", err)
	}
	return ns.Name
}

// createRuns creates n runs of repoURL in ns with a few parallel clients, as a burst of
// pushes would, and returns their names.
func createRuns(tb testing.TB, ns, repoURL string, n int) []string {
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
					Spec:       civ1alpha1.PipelineRunSpec{RepoURL: repoURL},
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
	runs, err := cache.New(cfg, cache.Options{Scheme: scheme, DefaultNamespaces: map[string]cache.Config{ns: {}}})
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
		case <-time.After(100 * time.Millisecond):
		}
	}
}
