//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gittest"
)

// BenchmarkClusterFailover: how long handoffs stop when the operator's leader goes, four
// ways: two replicas (a warm standby) or one (Kubernetes restarts it), and the leader
// killed (SIGKILL: its lease stays held until it expires) or deleted gracefully (it
// releases its lease on the way out). Each time four runs of sleeping steps go on, the
// leader goes at a random moment, and the figure is the time from then to the first Job
// made after it: the new leader's first handoff.
func BenchmarkClusterFailover(b *testing.B) {
	b.Cleanup(func() { scaleOperator(b, 2) })
	for range b.N {
		for _, replicas := range []int{2, 1} {
			scaleOperator(b, replicas)
			for _, graceful := range []bool{false, true} {
				how := "killed"
				if graceful {
					how = "deleted"
				}
				d := failoverOnce(b, graceful)
				b.ReportMetric(d.Seconds(), fmt.Sprintf("%dreplica-%s-s", replicas, how))
				b.Logf("%d replica(s), leader %s: first handoff %.1fs after", replicas, how, d.Seconds())
			}
		}
	}
}

func scaleOperator(b testing.TB, replicas int) {
	if out, err := kubectl("-n", operatorNS, "scale", "deploy/"+operatorDeploy, fmt.Sprintf("--replicas=%d", replicas)); err != nil {
		b.Fatalf("scaling the operator: %v %s", err, out)
	}
	if out, err := kubectl("-n", operatorNS, "rollout", "status", "deploy/"+operatorDeploy, "--timeout=180s"); err != nil {
		b.Fatalf("the operator at %d replicas: %v %s", replicas, err, out)
	}
	if out, err := kubectl("-n", operatorNS, "wait", "deploy/"+operatorDeploy, "--timeout=120s",
		fmt.Sprintf("--for=jsonpath={.status.replicas}=%d", replicas)); err != nil {
		b.Fatalf("the operator's old pods did not go: %v %s", err, out)
	}
}

func failoverOnce(b *testing.B, graceful bool) time.Duration {
	ns := benchNamespace(b)
	repo, srv := gitServer(b, map[string]string{"build/flow-ci.yaml": failoverPipeline}, gittest.HTTPOptions{})
	seen := watchChildren(b, ns)
	for i := range 4 {
		run := &civ1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("f-%d", i)},
			Spec: civ1alpha1.PipelineRunSpec{RepoURL: srv.RepoURL(repo)}}
		if err := k8s.Create(context.Background(), run); err != nil {
			b.Fatal(err)
		}
	}
	// Once the first steps run, so that handoffs are due all along.
	if _, ok := seen.firstJobAfter(time.Now(), time.Minute); !ok {
		b.Fatal("no Job within a minute of the runs' creation")
	}
	time.Sleep(time.Duration(3000+rand.N(3000)) * time.Millisecond)
	leader := operatorLeader(b)
	at := time.Now()
	if graceful {
		if out, err := kubectl("-n", operatorNS, "delete", "pod", leader, "--wait=false"); err != nil {
			b.Fatalf("deleting the leader: %v %s", err, out)
		}
	} else if err := signalPod(leader, false, syscall.SIGKILL); err != nil {
		b.Fatal(err)
	}
	next, ok := seen.firstJobAfter(at, 2*time.Minute)
	if !ok {
		b.Fatal("no handoff within 2 minutes of the leader's end")
	}
	d := next.Sub(at)
	waitRunsSucceeded(b, ns)
	deleteNamespace(b, ns)
	return d
}
