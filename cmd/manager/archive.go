package main

import (
	"context"
	"errors"
	"fmt"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/flow-ci/flow-ci/controllers/metrics"
	// The PostgreSQL driver of --store=postgres, registered as "pgx".
	_ "github.com/jackc/pgx/v5/stdlib"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers"
	"github.com/flow-ci/flow-ci/controllers/access"
	archivectl "github.com/flow-ci/flow-ci/controllers/archive"
	"github.com/flow-ci/flow-ci/internal/archive"
	"github.com/flow-ci/flow-ci/internal/archive/api"
	"github.com/flow-ci/flow-ci/internal/archive/blob"
	"github.com/flow-ci/flow-ci/internal/archive/sqlstore"
)

// runArchive is `flow-ci archive`: the run archive's own process (config/archive).
func runArchive(args []string) error {
	o, zo, err := parseArchiveFlags(args)
	if err != nil {
		return err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(zo)))
	ctx := ctrl.SetupSignalHandler()
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(civ1alpha1.AddToScheme(scheme))
	restCfg := ctrl.GetConfigOrDie()
	if o.releaseAll {
		return releaseAll(ctx, restCfg, scheme)
	}
	store, err := openStore(ctx, o)
	if err != nil {
		return err
	}
	defer store.Close()
	restCfg.QPS, restCfg.Burst = 50, 100 // one log stream per running container, and their reads
	var lease resourcelock.Interface
	if o.leaderElection {
		if lease, err = archiveLease(restCfg, o.namespace, o.standby.Window); err != nil {
			return err
		}
	}
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:                              scheme,
		Cache:                               controllers.ArchiveCacheOptions(),
		Client:                              controllers.ClientOptions(),
		Metrics:                             metrics.ServerOptions(o.metricsAddr, true, ""),
		HealthProbeBindAddress:              o.probeAddr,
		PprofBindAddress:                    o.pprofAddr,
		LeaderElection:                      o.leaderElection,
		LeaderElectionResourceLockInterface: lease,
		LeaderElectionReleaseOnCancel:       true,
	})
	if err != nil {
		return fmt.Errorf("creating the archive's manager: %w", err)
	}
	cs, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}
	if err := setupArchive(ctx, mgr, cs, store, o); err != nil {
		return err
	}
	ctrl.Log.WithName("setup").Info("starting the archive", "store", o.store, "listen", o.listen, "hold", o.hold)
	return mgr.Start(ctx)
}

func setupArchive(ctx context.Context, mgr ctrl.Manager, cs kubernetes.Interface, store archive.Store, o *archiveOptions) error {
	log := ctrl.Log.WithName("archive")
	r := &archivectl.Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Pods: cs.CoreV1(),
		Store: store, Limits: o.limits, CacheBytes: o.artifacts.NamespaceCacheBytes, Hold: o.hold, Standby: o.standby, Log: log}
	if err := r.SetupWithManager(ctx, mgr, controller.Options{MaxConcurrentReconciles: 4}); err != nil {
		return fmt.Errorf("setting up the archive controller: %w", err)
	}
	if err := mgr.Add(r.NewRetention(o.maxAge, o.limits.MaxNamespace, o.maxTotal, o.retainEach)); err != nil {
		return err
	}
	handler := api.New(api.Options{Store: store, Access: access.New(cs), Log: log.WithName("api"), Limits: o.artifacts, Metrics: r.Metrics,
		Agents: archivectl.Agents{Reviews: cs.AuthenticationV1().TokenReviews(), Client: mgr.GetClient(), APIReader: mgr.GetAPIReader()}})
	if err := mgr.Add(&httpsServer{addr: o.listen, handler: handler, tls: tlsSource{cs: cs, o: o}}); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	return mgr.AddReadyzCheck("readyz", healthz.Ping)
}

// openStore opens the configured store; credentials come from files and the
// environment, never from flags, and are never logged.
func openStore(ctx context.Context, o *archiveOptions) (archive.Store, error) {
	if o.store == "embedded" {
		s, err := sqlstore.OpenEmbedded(ctx, o.dataDir)
		if err != nil {
			return nil, fmt.Errorf("opening the embedded store in %s: %w", o.dataDir, err)
		}
		return s, nil
	}
	raw, err := os.ReadFile(filepath.Clean(o.pgURLFile))
	if err != nil {
		return nil, fmt.Errorf("--postgres-url-file: %w", err)
	}
	c := o.s3
	c.AccessKey, c.SecretKey = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	blobs, err := blob.S3(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("the object store: %w", err)
	}
	s, err := sqlstore.Open(ctx, "pgx", strings.TrimSpace(string(raw)), blobs)
	if err != nil {
		// pgx errors can name the URL's user and host, never its password.
		return nil, errors.New("opening PostgreSQL: " + redactURL(err.Error()))
	}
	return s, nil
}

// httpsServer serves readers on every replica (not only the leader).
type httpsServer struct {
	addr    string
	handler http.Handler
	tls     tlsSource
}

func (s *httpsServer) NeedLeaderElection() bool { return false }

func (s *httpsServer) Start(ctx context.Context) error {
	cfg, err := s.tls.config(ctx)
	if err != nil {
		return err
	}
	srv := &http.Server{Addr: s.addr, Handler: s.handler, TLSConfig: cfg,
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServeTLS("", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	}
}

// releaseAll removes the archive's finalizer from every run: the step before
// uninstalling the archive, so that no run waits for it.
func releaseAll(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme) error {
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	var runs civ1alpha1.PipelineRunList
	if err := c.List(ctx, &runs); err != nil {
		return fmt.Errorf("listing runs: %w", err)
	}
	released := 0
	for i := range runs.Items {
		run := &runs.Items[i]
		var changed bool
		// A run written since the list (its status, say) conflicts: read it again.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			var err error
			if changed, err = controllers.SetFinalizer(ctx, c, run, civ1alpha1.FinalizerArchive, false); apierrors.IsConflict(err) {
				_ = c.Get(ctx, client.ObjectKeyFromObject(run), run)
			}
			return err
		})
		if client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("releasing %s/%s: %w", run.Namespace, run.Name, err)
		}
		if changed {
			released++
		}
	}
	fmt.Printf("released %d runs\n", released)
	return nil
}

// redactURL removes a password from any URL in s.
func redactURL(s string) string {
	fields := strings.Fields(s)
	for i, f := range fields {
		if at := strings.Index(f, "@"); at > 0 && strings.Contains(f[:at], "://") {
			if colon := strings.LastIndex(f[:at], ":"); colon > strings.Index(f, "://")+2 {
				fields[i] = f[:colon] + ":xxxxx" + f[at:]
			}
		}
	}
	return strings.Join(fields, " ")
}
