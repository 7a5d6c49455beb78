package main

import (
	"testing"

	"github.com/flow-ci/flow-ci/controllers/testenv"
)

// The package's envtest tests (the archive's --release-all) share one real
// kube-apiserver and etcd (controllers/testenv).
var env = testenv.Suite()

func TestMain(m *testing.M) { env.Main(m) }
