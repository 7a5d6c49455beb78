// Package testenv starts the real kube-apiserver and etcd (envtest, from
// hack/envtest-assets.sh) with flow-ci's CRDs, for the integration tests of the
// controllers and the CLI: one suite setup instead of one per package.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/go-logr/logr"
	"go.uber.org/zap/zapcore"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// Env is a test package's real API server. Declare it once per package and run it from
// TestMain, which Go requires in each package:
//
//	var env = testenv.Suite()
//
//	func TestMain(m *testing.M) { env.Main(m) }
//
// Tests use env.Client (an admin client), env.Config, env.Scheme, env.NewNamespace and
// the embedded envtest.Environment (AddUser).
type Env struct {
	*envtest.Environment
	Config *rest.Config
	Client client.Client
	Scheme *k8sruntime.Scheme

	kubeconfig string
}

// Suite returns the package's Env, started by Main.
func Suite() *Env { return &Env{Scheme: Scheme()} }

// Scheme holds the built-in types, the CRD types and flow-ci's API.
func Scheme() *k8sruntime.Scheme {
	s := k8sruntime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	return s
}

// Main starts the API server with the CRDs of config/crd/bases, runs the tests, stops
// it and exits with the tests' code: a TestMain's body. The controllers' logs are
// discarded unless FLOWCI_TEST_LOG is set.
func (e *Env) Main(m *testing.M) { os.Exit(e.run(m)) }

func (e *Env) run(m *testing.M) int {
	if os.Getenv("FLOWCI_TEST_LOG") != "" {
		log.SetLogger(zap.New(zap.UseDevMode(true), zap.Level(zapcore.Level(-2))))
	} else {
		log.SetLogger(logr.Discard())
	}
	if err := e.start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if e.kubeconfig != "" {
			_ = os.RemoveAll(filepath.Dir(e.kubeconfig))
		}
		if err := e.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping envtest:", err)
		}
	}()
	return m.Run()
}

// Kubeconfig is the path of a kubeconfig file for an admin of the API server, for
// tests of commands that read one.
func (e *Env) Kubeconfig(t *testing.T) string {
	t.Helper()
	if e.kubeconfig != "" {
		return e.kubeconfig
	}
	admin, err := e.AddUser(envtest.User{Name: "cli", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := admin.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "flowci-kubeconfig-")
	if err != nil {
		t.Fatal(err)
	}
	e.kubeconfig = filepath.Join(dir, "config")
	if err := os.WriteFile(e.kubeconfig, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return e.kubeconfig
}

func (e *Env) start() error {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return errors.New("KUBEBUILDER_ASSETS is not set: run `make test`, or export KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh)")
	}
	_, file, _, _ := runtime.Caller(0)
	e.Environment = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(filepath.Dir(file), "..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                e.Scheme,
	}
	var err error
	if e.Config, err = e.Environment.Start(); err != nil {
		return fmt.Errorf("starting envtest: %w", err)
	}
	if e.Client, err = client.New(e.Config, client.Options{Scheme: e.Scheme}); err != nil {
		return err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(e.Config)
	if err != nil {
		return err
	}
	v, err := dc.ServerVersion()
	if err != nil {
		return fmt.Errorf("reading the server version: %w", err)
	}
	fmt.Printf("envtest: kube-apiserver %s (%s) at %s\n", v.GitVersion, v.Platform, e.Config.Host)
	return nil
}

// NewNamespace creates a namespace unique to the test, so tests can run in parallel.
func (e *Env) NewNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{}
	ns.GenerateName = "t-"
	if err := e.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	return ns.Name
}

// StartManager runs mgr until the test ends or the returned stop is called; stop waits
// for it and fails the test if it ended with an error.
func StartManager(t *testing.T, mgr manager.Manager) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// ServiceAccountToken makes a ServiceAccount in ns, bound to rules there when there
// are any, and returns a real token of it (TokenRequest): a reader whom the tests'
// servers check with TokenReview and SubjectAccessReview against real RBAC.
func (e *Env) ServiceAccountToken(t *testing.T, ns, name string, rules ...rbacv1.PolicyRule) string {
	t.Helper()
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := e.Client.Create(ctx, sa); err != nil {
		t.Fatal(err)
	}
	if len(rules) > 0 {
		role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Rules: rules}
		binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}}}
		if err := e.Client.Create(ctx, role); err != nil {
			t.Fatal(err)
		}
		if err := e.Client.Create(ctx, binding); err != nil {
			t.Fatal(err)
		}
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: new(int64(3600))}}
	if err := e.Client.SubResource("token").Create(ctx, sa, tr); err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}
