package controllers

import (
	"os"
	"testing"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/flow-ci/flow-ci/controllers/testenv"
)

// The suite shares one real kube-apiserver and etcd (envtest, controllers/testenv).
var (
	testEnv    *envtest.Environment
	cfg        *rest.Config
	k8sClient  client.Client
	testScheme = testenv.Scheme()
	env        *testenv.Env
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Run(m, func(e *testenv.Env) error {
		env, testEnv, cfg, k8sClient = e, e.Environment, e.Config, e.Client
		return nil
	}))
}

// newNamespace creates a namespace unique to the test, so tests can run in parallel.
func newNamespace(t *testing.T) string { return env.NewNamespace(t) }
