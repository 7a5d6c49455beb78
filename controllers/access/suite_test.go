package access_test

import (
	"testing"

	"github.com/flow-ci/flow-ci/controllers/testenv"
)

// The package's tests share one real kube-apiserver and etcd (controllers/testenv).
var env = testenv.Suite()

func TestMain(m *testing.M) { env.Main(m) }
