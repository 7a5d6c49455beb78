package main

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/flow-ci/flow-ci/controllers/commitstatus"
	"github.com/flow-ci/flow-ci/controllers/metrics"
	"github.com/flow-ci/flow-ci/controllers/pipelinerun"
	"github.com/flow-ci/flow-ci/controllers/trigger"
	"github.com/flow-ci/flow-ci/internal/gitsource"
	"github.com/flow-ci/flow-ci/internal/leasefence"
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
	leaseNamespace  string
	lease           leaseTimes
	fence           *leasefence.Fence // with leader election: the writes' fence
	namespace       string
	render          render.Config
	archiveCA       string
	archiveURL      string
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
	repoLabels      metrics.RepositoryLabels
}

// rawFlags holds the flags that need work once parsed.
type rawFlags struct {
	pullPolicy, nets string
	ttl              int
	resources        map[string]*corev1.ResourceList
}

// resourceDefaults are the resource flags and their defaults.
var resourceDefaults = map[string]string{
	"default-step-requests": "cpu=100m,memory=128Mi", "default-step-limits": "memory=2Gi",
	"clone-requests": "cpu=100m,memory=64Mi", "clone-limits": "memory=512Mi",
	"max-step-resources": "cpu=8,memory=32Gi",
}

// newFlagSet registers every flag of the manager on a new set, into o and r.
func newFlagSet(o *options, r *rawFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	serverFlags(fs, o)
	runFlags(fs, o, r)
	poolFlags(fs, o)
	r.resources = map[string]*corev1.ResourceList{}
	for name, def := range resourceDefaults {
		list := corev1.ResourceList{}
		r.resources[name] = &list
		usage := fmt.Sprintf("Resources of %s containers, e.g. cpu=250m,memory=256Mi (default %q).", strings.Split(name, "-")[0], def)
		if name == "max-step-resources" {
			usage = fmt.Sprintf("The most a pipeline file may request or limit for one step; a file over it fails its run (default %q).", def)
		}
		fs.Func(name, usage, func(v string) error {
			l, err := render.ParseResourceList(v)
			*r.resources[name] = l
			return err
		})
		*r.resources[name], _ = render.ParseResourceList(def)
	}
	return fs
}

// serverFlags are the manager's endpoints, identity and client.
func serverFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8443", "Address of the metrics endpoint; 0 disables it.")
	fs.BoolVar(&o.metricsSecure, "metrics-secure", true, "Serve metrics over HTTPS to clients the API server authenticates and authorizes (get on /metrics); false serves plain HTTP to anyone.")
	fs.StringVar(&o.metricsCertDir, "metrics-cert-dir", "", "Directory with the metrics endpoint's tls.crt and tls.key (config/certmanager mounts cert-manager's), reloaded when they change; empty serves a self-signed certificate.")
	fs.BoolVar(&o.repoLabels.Enabled, "metrics-repository-label", false, "Label run metrics with the repository (its normalised URL), for at most --metrics-max-repositories of them.")
	fs.IntVar(&o.repoLabels.Max, "metrics-max-repositories", 50, "Distinct repository label values; further repositories are counted as \"other\".")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints.")
	fs.BoolVar(&o.leaderElection, "leader-elect", false, "Elect a leader, so that only one replica reconciles.")
	fs.StringVar(&o.leaseNamespace, "leader-election-namespace", "", "Namespace of the leader election Lease (default: the operator's own, when it runs in a pod).")
	leaseFlags(fs, &o.lease)
	fs.StringVar(&o.namespace, "namespace", "", "Watch only this namespace (all namespaces when empty).")
	fs.IntVar(&o.maxReconciles, "max-concurrent-reconciles", pipelinerun.DefaultMaxConcurrentReconciles, "PipelineRuns reconciled in parallel.")
	fs.Float64Var(&o.qps, "kube-api-qps", pipelinerun.DefaultQPS, "Client-side limit of the operator's API requests per second.")
	fs.IntVar(&o.burst, "kube-api-burst", pipelinerun.DefaultBurst, "Client-side burst of the operator's API requests.")
	fs.StringVar(&o.pprofAddr, "pprof-bind-address", "", "Address of the Go profiler's endpoints (/debug/pprof); empty disables them.")
	fs.DurationVar(&o.stuckAfter, "stuck-reconcile-timeout", 2*time.Minute, "Fail /healthz while a reconcile runs longer than this; 0 disables.")
	fs.BoolVar(&o.stepEvents, "step-events", false, "Record progress events: the run's start, and each step's start and success (a queued run, step failures and the run's end always have one).")
}

// runFlags shape the runs: images, bounds, deadlines, cleanup and egress.
func runFlags(fs *flag.FlagSet, o *options, r *rawFlags) {
	fs.StringVar(&o.render.DefaultStepImage, "default-step-image", envOr("FLOWCI_DEFAULT_STEP_IMAGE", "busybox:1.37"),
		"Image of steps whose pipeline sets none (env FLOWCI_DEFAULT_STEP_IMAGE).")
	fs.StringVar(&o.render.CloneImage, "clone-image", os.Getenv("FLOWCI_CLONE_IMAGE"),
		"The operator's own image, run by clone Jobs (env FLOWCI_CLONE_IMAGE).")
	fs.StringVar(&o.archiveURL, "archive-url", "",
		"The archive as step pods reach it, where steps keep their artifacts (default: https:// and the cluster IP of the Service flow-ci-archive, beside the CA ConfigMap).")
	fs.StringVar(&o.archiveCA, "archive-ca-configmap", "flow-ci-system/flow-ci-archive-ca",
		"NAMESPACE/NAME of the ConfigMap holding the archive's certificate (ca.crt), which the operator passes to steps that keep artifacts; empty keeps none.")
	fs.StringVar(&r.pullPolicy, "image-pull-policy", "", "Pull policy of clone and step containers (default: Kubernetes' own).")
	fs.DurationVar(&o.lifecycle.Unschedulable, "unschedulable-timeout", 10*time.Minute,
		"Fail a step whose pod stays pending or unschedulable this long (reason Unschedulable); 0 disables.")
	fs.DurationVar(&o.lifecycle.NodeLost, "node-lost-timeout", time.Minute,
		"Fail a run whose workspace's node has not been Ready this long (reason NodeLost), and delete its pods there without grace; 0 disables (and the operator then never reads Nodes).")
	fs.DurationVar(&o.lifecycle.ImagePull, "image-pull-timeout", 2*time.Minute,
		"Fail a step whose image cannot be pulled, or container created, for this long; 0 disables.")
	fs.IntVar(&r.ttl, "ttl-seconds-after-finished", 0, "Delete finished runs that set no spec.ttlSecondsAfterFinished after this long; 0 keeps them.")
	fs.IntVar(&o.lifecycle.SuccessfulHistoryLimit, "successful-history-limit", 10, "Succeeded runs kept per repository and branch; negative keeps all.")
	fs.IntVar(&o.lifecycle.FailedHistoryLimit, "failed-history-limit", 10, "Failed and cancelled runs kept per repository and branch; negative keeps all.")
	fs.IntVar(&o.lifecycle.NamespaceHistoryLimit, "namespace-history-limit", pipelinerun.DefaultNamespaceHistoryLimit,
		"Finished runs kept per namespace, of any repository and branch (the runs of deleted branches are pruned only by this): past it by a tenth, the oldest go down to it; 0 is the default, negative keeps all.")
	fs.IntVar(&o.lifecycle.MaxActiveRuns, "max-active-runs", 0, "Queue runs cluster-wide, fairly between namespaces, beyond this many active ones; 0 is unlimited.")
	fs.DurationVar(&o.lifecycle.PendingTimeout, "pending-timeout", 5*time.Minute,
		"Fail a run that has no definition yet after retrying transient errors (a missing Secret, an unreachable server) this long; 0 waits for spec.timeout.")
	fs.StringVar(&r.nets, "git-allowed-networks", "", "Comma-separated CIDRs of git servers on networks the egress policy denies by default (loopback, private, link-local, ...).")
	fs.StringVar(&o.render.StepPriorityClass, "step-priority-class", "flow-ci-steps",
		"PriorityClass of the steps of a run pinned to one node, one above the default, so that they use the room the run's hold keeps there; \"\" turns the hold off.")
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
	fs.DurationVar(&o.lifecycle.ArchiveHoldMax, "archive-hold-max", 15*time.Minute,
		"Remove the archive's finalizer from a run deleted this long ago (an archive that is down or was uninstalled); 0 never does.")
}

// poolFlags size the pools that do git and forge I/O off the reconcile workers.
func poolFlags(fs *flag.FlagSet, o *options) {
	fs.IntVar(&o.fetchers, "definition-fetchers", pipelinerun.DefaultFetchers, "New runs whose commit and pipeline file are read from git at once, off the reconcile workers; one namespace may hold half.")
	fs.IntVar(&o.pollers, "trigger-pollers", trigger.DefaultPollers, "PipelineTrigger polls (ls-remote) in flight at once, off the reconcile workers; one namespace may hold half.")
	fs.IntVar(&o.reporters, "commit-status-concurrency", commitstatus.DefaultConcurrency, "Commit statuses posted to forges at once; one namespace may hold half.")
	fs.IntVar(&o.reporters, "report-concurrency", commitstatus.DefaultConcurrency, "Deprecated: --commit-status-concurrency.")
}

func parseFlags(args []string) (*options, *zap.Options, error) {
	o, r := &options{}, &rawFlags{}
	fs := newFlagSet(o, r)
	zo := &zap.Options{}
	zo.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	return o, zo, finish(o, r)
}

// finish derives what the parsed flags imply and refuses contradictions, so a bad
// configuration fails at startup instead of failing every run.
func finish(o *options, r *rawFlags) error {
	var err error
	if o.allowedNetworks, err = gitsource.ParseNetworks(strings.Split(r.nets, ",")); err != nil {
		return fmt.Errorf("--git-allowed-networks: %w", err)
	}
	for _, n := range o.allowedNetworks {
		o.render.Clone.AllowedNetworks = append(o.render.Clone.AllowedNetworks, n.String())
	}
	res := r.resources
	o.render.StepResources = corev1.ResourceRequirements{Requests: *res["default-step-requests"], Limits: *res["default-step-limits"]}
	o.render.CloneResources = corev1.ResourceRequirements{Requests: *res["clone-requests"], Limits: *res["clone-limits"]}
	o.render.MaxStepResources = *res["max-step-resources"]
	for _, flag := range []string{"default-step-requests", "default-step-limits"} {
		for name, q := range *res[flag] {
			if most, ok := o.render.MaxStepResources[name]; ok && q.Cmp(most) > 0 {
				return fmt.Errorf("--%s: %s=%s is above --max-step-resources %s=%s", flag, name, q.String(), name, most.String())
			}
		}
	}
	o.render.ImagePullPolicy = corev1.PullPolicy(r.pullPolicy)
	o.lifecycle.DefaultTTLSecondsAfterFinished = int32(min(max(r.ttl, 0), 1<<30))
	if o.render.CloneImage == "" {
		return errors.New("--clone-image (or FLOWCI_CLONE_IMAGE) is required: the clone Job runs the operator's own image")
	}
	return o.lease.validate()
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
