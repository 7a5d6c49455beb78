package main

import (
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/flow-ci/flow-ci/controllers/testenv"
)

// The cluster commands and the web view are tested against a real kube-apiserver
// (envtest); no controller runs, so tests write the runs' status themselves.
var (
	env        *testenv.Env
	testEnv    *envtest.Environment
	k8sClient  client.Client
	kubeconfig string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "flowci-kubeconfig-")
	if err != nil {
		panic(err)
	}
	code := testenv.Run(m, func(e *testenv.Env) error {
		env, testEnv, k8sClient = e, e.Environment, e.Client
		admin, err := e.AddUser(envtest.User{Name: "cli", Groups: []string{"system:masters"}}, nil)
		if err != nil {
			return err
		}
		raw, err := admin.KubeConfig()
		if err != nil {
			return err
		}
		kubeconfig = filepath.Join(dir, "config")
		return os.WriteFile(kubeconfig, raw, 0o600)
	})
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func newNamespace(t *testing.T) string { return env.NewNamespace(t) }
