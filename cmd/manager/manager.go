package main

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers"
	"github.com/flow-ci/flow-ci/controllers/commitstatus"
	"github.com/flow-ci/flow-ci/controllers/metrics"
	"github.com/flow-ci/flow-ci/controllers/pipelinerun"
	"github.com/flow-ci/flow-ci/controllers/trigger"
	"github.com/flow-ci/flow-ci/internal/forge"
	"github.com/flow-ci/flow-ci/internal/gitsource"
	"github.com/flow-ci/flow-ci/internal/leasefence"
	"github.com/flow-ci/flow-ci/internal/podlogs"
	"github.com/flow-ci/flow-ci/internal/render"
)

func runManager(args []string) error {
	o, zo, err := parseFlags(args)
	if err != nil {
		return err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(zo)))
	mgr, err := newManager(o)
	if err != nil {
		return err
	}
	ctx := ctrl.SetupSignalHandler()
	inFlight := &pipelinerun.InFlight{Limit: o.stuckAfter}
	if err := setupControllers(mgr, o, inFlight); err != nil {
		return err
	}
	metrics.RegisterRunsGauge(mgr.GetCache(), mgr.Elected())
	if o.leaderElection {
		if err := warmStandby(ctx, mgr); err != nil {
			return err
		}
	}
	if err := mgr.Add(releaseStartupMemory(mgr, collectOftenAtStartup())); err != nil {
		return fmt.Errorf("adding the start-up memory release: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("adding health check: %w", err)
	}
	if err := mgr.AddHealthzCheck("reconcilers", inFlight.Check); err != nil {
		return fmt.Errorf("adding health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("adding ready check: %w", err)
	}
	ctrl.Log.WithName("setup").Info("starting manager", "namespace", o.namespace, "leaderElection", o.leaderElection,
		"cloneImage", o.render.CloneImage, "defaultStepImage", o.render.DefaultStepImage, "gitAllowedNetworks", o.render.Clone.AllowedNetworks)
	return mgr.Start(ctx)
}

// newManager makes the manager: its scheme, the trimmed cache, the client that never
// caches ConfigMaps or Secrets, metrics, probes and leader election.
func newManager(o *options) (ctrl.Manager, error) {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(civ1alpha1.AddToScheme(scheme))
	cacheOpts := controllers.CacheOptions()
	if o.namespace != "" {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{o.namespace: {}}
	}
	restCfg := ctrl.GetConfigOrDie()
	restCfg.QPS, restCfg.Burst = float32(o.qps), o.burst
	opts := ctrl.Options{
		PprofBindAddress:       o.pprofAddr,
		Scheme:                 scheme,
		Cache:                  cacheOpts,
		Client:                 controllers.ClientOptions(),
		Metrics:                metrics.ServerOptions(o.metricsAddr, o.metricsSecure, o.metricsCertDir),
		HealthProbeBindAddress: o.probeAddr,
	}
	if o.leaderElection {
		if err := electLeader(&opts, restCfg, o); err != nil {
			return nil, err
		}
	}
	mgr, err := ctrl.NewManager(restCfg, opts)
	if err != nil {
		return nil, fmt.Errorf("creating manager: %w", err)
	}
	return mgr, nil
}

// electLeader sets up leader election, and fences cfg: every write made through it (by
// the manager's clients and its event recorder) starts within the renew deadline of the
// lease's last renewal (internal/leasefence). The lease's own client is not fenced.
func electLeader(opts *ctrl.Options, cfg *rest.Config, o *options) error {
	ns, err := leaseNamespace(o.leaseNamespace)
	if err != nil {
		return err
	}
	fence := leasefence.New(o.lease.renewDeadline)
	o.fence = fence
	lock, err := managerLease(cfg, ns, o.lease, fence)
	if err != nil {
		return err
	}
	duration, renew, retry := o.lease.duration, o.lease.renewDeadline, o.lease.retryPeriod
	opts.LeaderElection, opts.LeaderElectionReleaseOnCancel = true, true
	opts.LeaderElectionResourceLockInterface = lock
	opts.LeaseDuration, opts.RenewDeadline, opts.RetryPeriod = &duration, &renew, &retry
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return leasefence.Wrap(rt, fence) })
	return nil
}

// setupControllers registers the three controllers, each set up the same way.
func setupControllers(mgr ctrl.Manager, o *options, inFlight *pipelinerun.InFlight) error {
	clientset, err := kubernetes.NewForConfig(mgr.GetConfig())
	if err != nil {
		return fmt.Errorf("creating the pods/log client: %w", err)
	}
	egress := []gitsource.Option{gitsource.WithAllowedNetworks(o.allowedNetworks...)}
	o.render.StepPriorityClass = stepPriorityClass(clientset, o.render.StepPriorityClass)
	runs := &pipelinerun.Reconciler{
		Logs:            podlogs.Reader{Pods: clientset.CoreV1()},
		Lifecycle:       o.lifecycle,
		Client:          mgr.GetClient(),
		APIReader:       mgr.GetAPIReader(),
		PodsAPI:         clientset.CoreV1().RESTClient(),
		Recorder:        mgr.GetEventRecorder("flow-ci"),
		Source:          pipelinerun.GitSource{Options: egress},
		Render:          o.render,
		Archive:         archiveTarget(mgr.GetAPIReader(), o.archiveCA, o.archiveURL),
		AllowedNetworks: o.allowedNetworks,
		InFlight:        inFlight,
		Fetchers:        o.fetchers,
		StepEvents:      o.stepEvents,
		Metrics:         metrics.RunMetrics{Repositories: &o.repoLabels},
		// A namespaced operator's series name one namespace, which it cannot watch.
		ForgetDeletedNamespaces: o.namespace == "",
	}
	if err := runs.SetupWithManager(mgr, controller.Options{MaxConcurrentReconciles: o.maxReconciles}); err != nil {
		return fmt.Errorf("setting up the PipelineRun controller: %w", err)
	}
	triggers := &trigger.Reconciler{
		Client:                 mgr.GetClient(),
		APIReader:              mgr.GetAPIReader(),
		Recorder:               mgr.GetEventRecorder("flow-ci"),
		Git:                    trigger.GitLister{Options: egress, Forge: &forge.Client{Egress: gitsource.Egress{Allowed: o.allowedNetworks}}},
		Pollers:                o.pollers,
		RunsPerHour:            o.runsPerHour,
		SuccessfulHistoryLimit: o.lifecycle.SuccessfulHistoryLimit,
		FailedHistoryLimit:     o.lifecycle.FailedHistoryLimit,
	}
	if err := triggers.SetupWithManager(mgr, controller.Options{MaxConcurrentReconciles: 2}); err != nil {
		return fmt.Errorf("setting up the PipelineTrigger controller: %w", err)
	}
	var poster commitstatus.Poster = &forge.Client{Egress: gitsource.Egress{Allowed: o.allowedNetworks}}
	if o.fence != nil {
		poster = fencedPoster{Poster: poster, fence: o.fence}
	}
	reporter := &commitstatus.Reconciler{
		Client:      mgr.GetClient(),
		APIReader:   mgr.GetAPIReader(),
		Recorder:    mgr.GetEventRecorder("flow-ci"),
		Forge:       poster,
		Concurrency: o.reporters,
	}
	if err := reporter.SetupWithManager(mgr, controller.Options{MaxConcurrentReconciles: 2}); err != nil {
		return fmt.Errorf("setting up the commit status reporter: %w", err)
	}
	return nil
}

// startupGCPercent is the garbage collector's target while the informers list every
// object at start-up: their lists decode whole objects before the cache trims them,
// the largest allocation the operator makes, and the peak it reaches decides an OOM
// kill at a restart. Collecting at 25% heap growth instead of 100% keeps that peak near
// what is live, for some CPU during the burst.
const startupGCPercent = 25

// collectOftenAtStartup lowers the GC target for the start-up burst and returns the
// one to restore after it (GOGC's, unless GOGC is already lower or off).
func collectOftenAtStartup() (restore int) {
	restore = debug.SetGCPercent(startupGCPercent)
	if restore < startupGCPercent {
		debug.SetGCPercent(restore)
	}
	return restore
}

// releaseStartupMemory ends the start-up burst once: it restores the GC target
// (gcPercent) and returns the burst's memory to the OS, which the runtime would
// otherwise return only slowly, so a restarted operator would hold its start-up peak
// for hours.
func releaseStartupMemory(mgr ctrl.Manager, gcPercent int) manager.RunnableFunc {
	return func(ctx context.Context) error {
		defer debug.SetGCPercent(gcPercent)
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			return nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Second): // the start-up pass over every run is over
			debug.FreeOSMemory()
		}
		return nil
	}
}

// archiveTarget finds the archive beside the CA ConfigMap ref names (NAMESPACE/NAME),
// at its Service flow-ci-archive unless url is set; an empty or malformed ref finds none.
func archiveTarget(reader client.Reader, ref, url string) *pipelinerun.ArchiveTarget {
	ns, name, ok := strings.Cut(ref, "/")
	if !ok || ns == "" || name == "" {
		return nil
	}
	return &pipelinerun.ArchiveTarget{Reader: reader, ConfigMap: client.ObjectKey{Namespace: ns, Name: name},
		Service: "flow-ci-archive", URL: url}
}

// warmStandby starts the informers the controllers watch before this replica leads:
// controller-runtime starts a controller's sources only once it is elected, so without
// this a standby that takes over would first list every run, Job and pod. The cache starts
// with the manager, on every replica; a standby pays the leader's memory for it.
func warmStandby(ctx context.Context, mgr ctrl.Manager) error {
	for _, obj := range []client.Object{&civ1alpha1.PipelineRun{}, &civ1alpha1.PipelineTrigger{},
		&batchv1.Job{}, &corev1.Pod{}, &corev1.PersistentVolumeClaim{}} {
		if _, err := mgr.GetCache().GetInformer(ctx, obj, cache.BlockUntilSynced(false)); err != nil {
			return fmt.Errorf("warming the standby's cache of %T: %w", obj, err)
		}
	}
	return nil
}

// stepPriorityClass is name when that PriorityClass exists and ranks above the pods of
// the default priority, else "". A step pod naming a missing class is refused by the API
// server, and a class at or below the cluster's default would leave the steps behind
// their own hold: either way the hold is turned off instead.
func stepPriorityClass(cs kubernetes.Interface, name string) string {
	if name == "" {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	log := ctrl.Log.WithName("setup")
	classes, err := cs.SchedulingV1().PriorityClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		log.Info("could not read the PriorityClasses; runs pinned to one node get no hold", "error", err.Error())
		return ""
	}
	if why := render.StepClassProblem(name, classes.Items); why != "" {
		log.Info("runs pinned to one node get no hold", "why", why)
		return ""
	}
	return name
}
