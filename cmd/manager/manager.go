package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"runtime/debug"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers"
	"github.com/flow-ci/flow-ci/controllers/pipelinerun"
	"github.com/flow-ci/flow-ci/controllers/report"
	"github.com/flow-ci/flow-ci/controllers/trigger"
	"github.com/flow-ci/flow-ci/internal/forge"
	"github.com/flow-ci/flow-ci/internal/gitsource"
	"github.com/flow-ci/flow-ci/internal/podlogs"
	"github.com/flow-ci/flow-ci/internal/render"
)

// options are the manager's flags.
type options struct {
	pprofAddr       string
	qps             float64
	burst           int
	metricsAddr     string
	probeAddr       string
	leaderElection  bool
	namespace       string
	render          render.Config
	maxReconciles   int
	lifecycle       pipelinerun.Lifecycle
	allowedNetworks []netip.Prefix
	stuckAfter      time.Duration
	fetchers        int
	stepEvents      bool
	pollers         int
	runsPerHour     int
	reporters       int
	metricsSecure   bool
	metricsCertDir  string
	repoLabels      controllers.RepositoryLabels
}

func parseFlags(args []string) (*options, *zap.Options, error) {
	o := &options{}
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8443", "Address of the metrics endpoint; 0 disables it.")
	fs.BoolVar(&o.metricsSecure, "metrics-secure", true, "Serve metrics over HTTPS to clients the API server authenticates and authorizes (get on /metrics); false serves plain HTTP to anyone.")
	fs.StringVar(&o.metricsCertDir, "metrics-cert-dir", "", "Directory with the metrics endpoint's tls.crt and tls.key (config/certmanager mounts cert-manager's), reloaded when they change; empty serves a self-signed certificate.")
	fs.BoolVar(&o.repoLabels.Enabled, "metrics-repository-label", false, "Label run metrics with the repository (its normalised URL), for at most --metrics-max-repositories of them.")
	fs.IntVar(&o.repoLabels.Max, "metrics-max-repositories", 50, "Distinct repository label values; further repositories are counted as \"other\".")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints.")
	fs.BoolVar(&o.leaderElection, "leader-elect", false, "Elect a leader, so that only one replica reconciles.")
	fs.StringVar(&o.namespace, "namespace", "", "Watch only this namespace (all namespaces when empty).")
	fs.StringVar(&o.render.DefaultStepImage, "default-step-image", envOr("FLOWCI_DEFAULT_STEP_IMAGE", "busybox:1.37"),
		"Image of steps whose pipeline sets none (env FLOWCI_DEFAULT_STEP_IMAGE).")
	fs.StringVar(&o.render.CloneImage, "clone-image", os.Getenv("FLOWCI_CLONE_IMAGE"),
		"The operator's own image, run by clone Jobs (env FLOWCI_CLONE_IMAGE).")
	pullPolicy := fs.String("image-pull-policy", "", "Pull policy of clone and step containers (default: Kubernetes' own).")
	fs.IntVar(&o.maxReconciles, "max-concurrent-reconciles", pipelinerun.DefaultMaxConcurrentReconciles, "PipelineRuns reconciled in parallel.")
	fs.Float64Var(&o.qps, "kube-api-qps", pipelinerun.DefaultQPS, "Client-side limit of the operator's API requests per second.")
	fs.IntVar(&o.burst, "kube-api-burst", pipelinerun.DefaultBurst, "Client-side burst of the operator's API requests.")
	fs.StringVar(&o.pprofAddr, "pprof-bind-address", "", "Address of the Go profiler's endpoints (/debug/pprof); empty disables them.")
	fs.DurationVar(&o.lifecycle.Unschedulable, "unschedulable-timeout", 10*time.Minute,
		"Fail a step whose pod stays pending or unschedulable this long (reason Unschedulable); 0 disables.")
	fs.DurationVar(&o.lifecycle.ImagePull, "image-pull-timeout", 2*time.Minute,
		"Fail a step whose image cannot be pulled, or container created, for this long; 0 disables.")
	ttl := fs.Int("ttl-seconds-after-finished", 0, "Delete finished runs that set no spec.ttlSecondsAfterFinished after this long; 0 keeps them.")
	fs.IntVar(&o.lifecycle.SuccessfulHistoryLimit, "successful-history-limit", 10, "Succeeded runs kept per repository and branch; negative keeps all.")
	fs.IntVar(&o.lifecycle.FailedHistoryLimit, "failed-history-limit", 10, "Failed and cancelled runs kept per repository and branch; negative keeps all.")
	fs.IntVar(&o.lifecycle.MaxActiveRuns, "max-active-runs", 0, "Queue runs cluster-wide, fairly between namespaces, beyond this many active ones; 0 is unlimited.")
	fs.DurationVar(&o.lifecycle.PendingTimeout, "pending-timeout", 5*time.Minute,
		"Fail a run that has no definition yet after retrying transient errors (a missing Secret, an unreachable server) this long; 0 waits for spec.timeout.")
	nets := fs.String("git-allowed-networks", "", "Comma-separated CIDRs of git servers on networks the egress policy denies by default (loopback, private, link-local, ...).")
	fs.Int64Var(&o.render.Clone.MaxBytes, "clone-max-bytes", 1<<30, "Bytes a clone Job may read from the git server.")
	fs.IntVar(&o.render.Clone.MaxFiles, "clone-max-files", 200_000, "Files a clone Job may check out.")
	fs.IntVar(&o.lifecycle.MaxParallelSteps, "max-parallel-steps", pipelinerun.DefaultMaxParallelSteps, "Step Jobs of one run that run at once.")
	fs.Func("max-workspace-size", fmt.Sprintf("The largest spec.workspace.size a run may ask for; 0 is unbounded (default %s).", pipelinerun.DefaultMaxWorkspaceSize),
		func(v string) (err error) { o.lifecycle.MaxWorkspaceSize, err = resource.ParseQuantity(v); return err })
	o.lifecycle.MaxWorkspaceSize = resource.MustParse(pipelinerun.DefaultMaxWorkspaceSize)
	fs.DurationVar(&o.lifecycle.MaxRetainOnFailure, "max-retain-on-failure", pipelinerun.DefaultMaxRetainOnFailure,
		"The longest spec.workspace.retainOnFailure a run may keep its workspace; 0 is unbounded.")
	fs.IntVar(&o.runsPerHour, "trigger-runs-per-hour", trigger.DefaultRunsPerHour,
		"Runs the PipelineTriggers of one namespace may start in an hour; 0 is unbounded.")
	fs.DurationVar(&o.lifecycle.FinallyGrace, "finally-grace", pipelinerun.DefaultFinallyGrace,
		"How long the finally steps of a run past its spec.timeout may run before the run ends.")
	resources := map[string]*corev1.ResourceList{}
	for flag, def := range map[string]string{
		"default-step-requests": "cpu=100m,memory=128Mi", "default-step-limits": "memory=2Gi",
		"clone-requests": "cpu=100m,memory=64Mi", "clone-limits": "memory=512Mi",
		"max-step-resources": "cpu=8,memory=32Gi",
	} {
		list := corev1.ResourceList{}
		resources[flag] = &list
		usage := fmt.Sprintf("Resources of %s containers, e.g. cpu=250m,memory=256Mi (default %q).", strings.Split(flag, "-")[0], def)
		if flag == "max-step-resources" {
			usage = fmt.Sprintf("The most a pipeline file may request or limit for one step; a file over it fails its run (default %q).", def)
		}
		fs.Func(flag, usage, func(v string) error {
			l, err := render.ParseResourceList(v)
			*resources[flag] = l
			return err
		})
		*resources[flag], _ = render.ParseResourceList(def)
	}
	fs.IntVar(&o.fetchers, "definition-fetchers", pipelinerun.DefaultFetchers, "New runs whose commit and pipeline file are read from git at once, off the reconcile workers.")
	fs.IntVar(&o.pollers, "trigger-pollers", trigger.DefaultPollers, "PipelineTrigger polls (ls-remote) in flight at once, off the reconcile workers.")
	fs.IntVar(&o.reporters, "report-concurrency", report.DefaultConcurrency, "Commit statuses posted to forges at once.")
	fs.BoolVar(&o.stepEvents, "step-events", false, "Record an event when each step starts and succeeds (step failures and run transitions always have one).")
	fs.DurationVar(&o.stuckAfter, "stuck-reconcile-timeout", 2*time.Minute, "Fail /healthz while a reconcile runs longer than this; 0 disables.")
	zo := &zap.Options{}
	zo.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	var err error
	if o.allowedNetworks, err = gitsource.ParseNetworks(strings.Split(*nets, ",")); err != nil {
		return nil, nil, fmt.Errorf("--git-allowed-networks: %w", err)
	}
	for _, n := range o.allowedNetworks {
		o.render.Clone.AllowedNetworks = append(o.render.Clone.AllowedNetworks, n.String())
	}
	o.render.StepResources = corev1.ResourceRequirements{Requests: *resources["default-step-requests"], Limits: *resources["default-step-limits"]}
	o.render.CloneResources = corev1.ResourceRequirements{Requests: *resources["clone-requests"], Limits: *resources["clone-limits"]}
	o.render.MaxStepResources = *resources["max-step-resources"]
	for _, flag := range []string{"default-step-requests", "default-step-limits"} {
		for name, q := range *resources[flag] {
			if most, ok := o.render.MaxStepResources[name]; ok && q.Cmp(most) > 0 {
				return nil, nil, fmt.Errorf("--%s: %s=%s is above --max-step-resources %s=%s", flag, name, q.String(), name, most.String())
			}
		}
	}
	o.render.ImagePullPolicy = corev1.PullPolicy(*pullPolicy)
	o.lifecycle.DefaultTTLSecondsAfterFinished = int32(min(max(*ttl, 0), 1<<30))
	if o.render.CloneImage == "" {
		return nil, nil, errors.New("--clone-image (or FLOWCI_CLONE_IMAGE) is required: the clone Job runs the operator's own image")
	}
	return o, zo, nil
}

func runManager(args []string) error {
	o, zo, err := parseFlags(args)
	if err != nil {
		return err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(zo)))
	log := ctrl.Log.WithName("setup")

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(civ1alpha1.AddToScheme(scheme))

	cacheOpts := controllers.CacheOptions()
	if o.namespace != "" {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{o.namespace: {}}
	}
	restCfg := ctrl.GetConfigOrDie()
	restCfg.QPS, restCfg.Burst = float32(o.qps), o.burst
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		PprofBindAddress:              o.pprofAddr,
		Scheme:                        scheme,
		Cache:                         cacheOpts,
		Client:                        controllers.ClientOptions(),
		Metrics:                       controllers.MetricsServerOptions(o.metricsAddr, o.metricsSecure, o.metricsCertDir),
		HealthProbeBindAddress:        o.probeAddr,
		LeaderElection:                o.leaderElection,
		LeaderElectionID:              "flow-ci.flowci.dev",
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	clientset, err := kubernetes.NewForConfig(mgr.GetConfig())
	if err != nil {
		return fmt.Errorf("creating the pods/log client: %w", err)
	}
	inFlight := &controllers.InFlight{Limit: o.stuckAfter}
	reconciler := &pipelinerun.Reconciler{
		Logs:            podlogs.Reader{Pods: clientset.CoreV1()},
		Lifecycle:       o.lifecycle,
		Client:          mgr.GetClient(),
		APIReader:       mgr.GetAPIReader(),
		Recorder:        mgr.GetEventRecorder("flow-ci"),
		Source:          pipelinerun.GitSource{Options: []gitsource.Option{gitsource.WithAllowedNetworks(o.allowedNetworks...)}},
		Render:          o.render,
		AllowedNetworks: o.allowedNetworks,
		InFlight:        inFlight,
		Fetchers:        o.fetchers,
		StepEvents:      o.stepEvents,
		Metrics:         controllers.RunMetrics{Repositories: &o.repoLabels},
	}
	ctx := ctrl.SetupSignalHandler()
	if err := reconciler.SetupWithManager(ctx, mgr, controller.Options{MaxConcurrentReconciles: o.maxReconciles}); err != nil {
		return fmt.Errorf("setting up the PipelineRun controller: %w", err)
	}
	triggers := &trigger.Reconciler{
		Client:                 mgr.GetClient(),
		APIReader:              mgr.GetAPIReader(),
		Recorder:               mgr.GetEventRecorder("flow-ci"),
		Git:                    trigger.GitLister{Options: []gitsource.Option{gitsource.WithAllowedNetworks(o.allowedNetworks...)}},
		Pollers:                o.pollers,
		RunsPerHour:            o.runsPerHour,
		SuccessfulHistoryLimit: o.lifecycle.SuccessfulHistoryLimit,
		FailedHistoryLimit:     o.lifecycle.FailedHistoryLimit,
	}
	if err := triggers.SetupWithManager(mgr, controller.Options{MaxConcurrentReconciles: 2}); err != nil {
		return fmt.Errorf("setting up the PipelineTrigger controller: %w", err)
	}
	reporter := &report.Reconciler{
		Client:      mgr.GetClient(),
		APIReader:   mgr.GetAPIReader(),
		Recorder:    mgr.GetEventRecorder("flow-ci"),
		Forge:       &forge.Client{Egress: gitsource.Egress{Allowed: o.allowedNetworks}},
		Concurrency: o.reporters,
	}
	if err := reporter.SetupWithManager(mgr, controller.Options{MaxConcurrentReconciles: 2}); err != nil {
		return fmt.Errorf("setting up the commit status reporter: %w", err)
	}
	controllers.RegisterRunsGauge(mgr.GetCache())
	if err := mgr.Add(releaseStartupMemory(mgr)); err != nil {
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
	log.Info("starting manager", "namespace", o.namespace, "leaderElection", o.leaderElection,
		"cloneImage", o.render.CloneImage, "defaultStepImage", o.render.DefaultStepImage, "gitAllowedNetworks", o.render.Clone.AllowedNetworks)
	return mgr.Start(ctx)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// releaseStartupMemory returns the memory of the start-up burst to the OS once. Every
// informer's first list decodes whole objects before the cache trims them, the largest
// allocation the operator makes; the runtime keeps those pages and would return them
// only slowly, so a restarted operator would hold its start-up peak for hours.
func releaseStartupMemory(mgr ctrl.Manager) manager.RunnableFunc {
	return func(ctx context.Context) error {
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
