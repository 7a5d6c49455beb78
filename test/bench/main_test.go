// Package bench measures the PipelineRun controller against a real kube-apiserver
// (envtest): step handoff latency, throughput, API writes per step and memory. It prints
// numbers and never fails on speed; TestBenchSmoke only checks the harness works.
package bench

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
)

// One kube-apiserver and etcd for the package. They run as separate processes, so the
// memory this process reports is the operator's (plus the harness's client side).
var (
	cfg       *rest.Config // the harness's own config: never counted
	k8sClient client.Client
	scheme    = runtime.NewScheme()
)

func TestMain(m *testing.M) {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(civ1alpha1.AddToScheme(scheme))
	// The reconciler logs every run at info level; thousands of runs would drown the table.
	ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	os.Exit(run(m))
}

// newEnvironment is an API server and etcd with flow-ci's CRDs.
func newEnvironment() *envtest.Environment {
	return &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
}

// cluster is an API server the benchmark drives: the package's, or one of its own
// (P4, whose manager must see exactly the history it measures).
type cluster struct {
	cfg *rest.Config
	c   client.Client
}

func packageCluster() *cluster { return &cluster{cfg: cfg, c: k8sClient} }

// startCluster starts an API server and etcd of their own, stopped when tb ends.
func startCluster(tb testing.TB) *cluster {
	tb.Helper()
	env := newEnvironment()
	c, err := env.Start()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = env.Stop() })
	k, err := client.New(c, client.Options{Scheme: scheme})
	if err != nil {
		tb.Fatal(err)
	}
	return &cluster{cfg: c, c: k}
}

func run(m *testing.M) int {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "test/bench: KUBEBUILDER_ASSETS is not set: run `make test` or `make bench`, or export KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh)")
		return 1
	}
	env := newEnvironment()
	var err error
	if cfg, err = env.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "starting envtest:", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping envtest:", err)
		}
	}()
	if k8sClient, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintln(os.Stderr, "creating client:", err)
		return 1
	}
	defer removeBinary()
	return m.Run()
}
