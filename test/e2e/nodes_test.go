//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gittest"
)

// requireNodes returns the cluster's Ready, schedulable nodes when there are at least n;
// with fewer it skips, unless E2E_NODES (make test-e2e NODES=2, as CI runs it) says the
// cluster has n, where it fails.
func requireNodes(t *testing.T, n int) []string {
	t.Helper()
	list := &corev1.NodeList{}
	if err := k8s.List(context.Background(), list); err != nil {
		t.Fatal(err)
	}
	var ready []string
	for _, node := range list.Items {
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue && !node.Spec.Unschedulable {
				ready = append(ready, node.Name)
			}
		}
	}
	if len(ready) < n {
		if want, _ := strconv.Atoi(os.Getenv("E2E_NODES")); want >= n {
			t.Fatalf("E2E_NODES=%d, but %d nodes are Ready: %v", want, len(ready), ready)
		}
		t.Skipf("needs %d Ready nodes, the cluster has %d (make test-e2e NODES=2)", n, len(ready))
	}
	return ready
}

// nodesOfRuns records, while it runs, the node of every pod of every run in ns (pods go
// with their Jobs once a run ends), until stop is called.
func nodesOfRuns(ns string) (stop func() map[string]map[string]string) {
	seen := map[string]map[string]string{} // run -> pod -> node
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			pods := &corev1.PodList{}
			if err := k8s.List(context.Background(), pods, client.InNamespace(ns), client.HasLabels{civ1alpha1.LabelRun}); err == nil {
				for _, p := range pods.Items {
					if p.Spec.NodeName == "" {
						continue
					}
					run := p.Labels[civ1alpha1.LabelRun]
					if seen[run] == nil {
						seen[run] = map[string]string{}
					}
					seen[run][p.Name] = p.Spec.NodeName
				}
			}
			select {
			case <-done:
				return
			case <-time.After(300 * time.Millisecond):
			}
		}
	}()
	return func() map[string]map[string]string { close(done); <-finished; return seen }
}

const fanPipeline = `name: fan
steps:
- name: prepare
  commands: [echo ready > ready.txt]
- {name: a, dependsOn: [prepare], commands: [sleep 3, cat ready.txt]}
- {name: b, dependsOn: [prepare], commands: [sleep 3, cat ready.txt]}
- {name: c, dependsOn: [prepare], commands: [sleep 3, cat ready.txt]}
- {name: d, dependsOn: [prepare], commands: [sleep 3, cat ready.txt]}
- name: gather
  dependsOn: [a, b, c, d]
  commands: [cat ready.txt]
`

// TestWorkspacePinsTheRun: on two nodes, a run's ReadWriteOnce workspace is made on the
// node its clone lands on, and every step pod follows it there, the four parallel ones
// included; the volume is bound to that node (local-path, as on a real cluster).
func TestWorkspacePinsTheRun(t *testing.T) {
	requireNodes(t, 2)
	t.Parallel()
	g := NewWithT(t)
	ns := newNamespace(t)
	repo, srv := gitServer(t, map[string]string{"build/flow-ci.yaml": fanPipeline}, gittest.HTTPOptions{})
	stop := nodesOfRuns(ns)
	var pvNode string
	createRun(t, ns, "fan", srv.RepoURL(repo), nil)
	g.Eventually(func(g Gomega) {
		pvcs := &corev1.PersistentVolumeClaimList{}
		g.Expect(k8s.List(context.Background(), pvcs, client.InNamespace(ns))).To(Succeed())
		g.Expect(pvcs.Items).To(HaveLen(1))
		pv := &corev1.PersistentVolume{}
		g.Expect(k8s.Get(context.Background(), client.ObjectKey{Name: pvcs.Items[0].Spec.VolumeName}, pv)).To(Succeed())
		g.Expect(pv.Spec.NodeAffinity).NotTo(BeNil())
		pvNode = pv.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0].Values[0]
	}).WithTimeout(2 * time.Minute).WithPolling(500 * time.Millisecond).Should(Succeed())
	run := waitFinished(t, ns, "fan", 4*time.Minute)
	pods := stop()["fan"]
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded), toJSON(run.Status))
	g.Expect(len(pods)).To(BeNumerically(">=", 7), "the clone and six steps: %v", pods)
	for pod, node := range pods {
		g.Expect(node).To(Equal(pvNode), "pod %s, of a workspace on %s", pod, pvNode)
	}
	t.Logf("the workspace and all %d pods on node %s", len(pods), pvNode)
}

// TestRunsSpreadOverNodes: ten runs at once use both nodes, each run on one.
func TestRunsSpreadOverNodes(t *testing.T) {
	nodes := requireNodes(t, 2)
	t.Parallel()
	g := NewWithT(t)
	ns := newNamespace(t)
	repo, srv := gitServer(t, map[string]string{"build/flow-ci.yaml": "name: s\nsteps:\n- name: work\n  commands: [sleep 2]\n"}, gittest.HTTPOptions{})
	stop := nodesOfRuns(ns)
	for i := range 10 {
		createRun(t, ns, fmt.Sprintf("run-%d", i), srv.RepoURL(repo), nil)
	}
	for i := range 10 {
		g.Expect(waitFinished(t, ns, fmt.Sprintf("run-%d", i), 5*time.Minute).Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded))
	}
	runs := stop()
	perNode := map[string]int{}
	for run, pods := range runs {
		var first string
		for _, node := range pods {
			if first == "" {
				first = node
			}
			g.Expect(node).To(Equal(first), "run %s crossed nodes: %v", run, pods)
		}
		perNode[first]++
	}
	t.Logf("10 runs per node: %v", perNode)
	g.Expect(perNode).To(HaveLen(len(nodes)), "every node took runs")
}

// localCluster is the state dir of hack/local-cluster.sh when the e2e runs on it (its
// kubeconfig lies there); the tests that stop a node's kubelet need it, and skip without.
func localCluster(t *testing.T) string {
	kc := os.Getenv("KUBECONFIG")
	dir := filepath.Dir(filepath.Dir(kc))
	if _, err := os.Stat(filepath.Join(dir, "pids")); kc == "" || err != nil {
		t.Skipf("not the local cluster (no %s/pids): cannot stop a node", dir)
	}
	return dir
}

// TestNodeLostMidRun: the kubelet of the node a run is pinned to stops (its containers go
// on, as on a node cut off). The run fails with NodeLost and a message naming the node,
// within the node controller's grace (50 s) and the watchdog (10 s in the e2e); deleted
// while the node is still down, it leaves no pod and no claim behind; the next run of the
// branch succeeds on the other node. Not parallel: it takes a node away.
func TestNodeLostMidRun(t *testing.T) {
	requireNodes(t, 2)
	localCluster(t)
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	repo, srv := gitServer(t, map[string]string{"build/flow-ci.yaml": "name: long\nsteps:\n- name: work\n  commands: [sleep 600]\n"}, gittest.HTTPOptions{})
	stop := nodesOfRuns(ns)
	createRun(t, ns, "doomed", srv.RepoURL(repo), nil)
	var node string
	g.Eventually(func(g Gomega) {
		run := getRun(g, ns, "doomed")
		g.Expect(run.Status.CurrentStep).To(Equal("work"))
		pods := podsIn(g, ns)
		for _, p := range pods {
			if p.Labels[civ1alpha1.LabelStep] != "" && p.Status.Phase == corev1.PodRunning {
				node = p.Spec.NodeName
			}
		}
		g.Expect(node).NotTo(BeEmpty())
	}).WithTimeout(3 * time.Minute).WithPolling(time.Second).Should(Succeed())
	n := strings.TrimPrefix(node, "127.0.0.")
	out, err := exec.Command(filepath.Join(root, "hack", "local-cluster.sh"), "node-stop", n).CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), string(out))
	stopped := time.Now()
	t.Cleanup(func() {
		if out, err := exec.Command(filepath.Join(root, "hack", "local-cluster.sh"), "node-start", n).CombinedOutput(); err != nil {
			t.Errorf("starting node %s again: %v\n%s", node, err, out)
		}
	})
	run := waitFinished(t, ns, "doomed", 4*time.Minute)
	failed := time.Since(stopped)
	succeeded := apimeta.FindStatusCondition(run.Status.Conditions, civ1alpha1.ConditionSucceeded)
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseFailed))
	g.Expect(succeeded.Reason).To(Equal(civ1alpha1.ReasonNodeLost), toJSON(run.Status))
	g.Expect(succeeded.Message).To(ContainSubstring("node " + node + ", where the run's workspace is"))
	t.Logf("kubelet of %s stopped; the run failed %.0fs later: %s", node, failed.Seconds(), succeeded.Message)
	// Deleted while its node is still down (as a TTL or history limit would), the run
	// leaves nothing: its step pod was released, its finished clone pod goes at once, and
	// with no pod left its workspace's claim goes too.
	g.Expect(k8s.Delete(ctx, run)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(podsIn(g, ns)).To(BeEmpty(), "the run's pods are gone")
		pvcs := &corev1.PersistentVolumeClaimList{}
		g.Expect(k8s.List(ctx, pvcs, client.InNamespace(ns))).To(Succeed())
		g.Expect(pvcs.Items).To(BeEmpty(), "the workspace's claim is gone")
	}).WithTimeout(2 * time.Minute).WithPolling(time.Second).Should(Succeed())

	// The branch moves on to a quick step; its next run lands on the node that answers.
	repo.Commit(t, map[string]string{"build/flow-ci.yaml": "name: quick\nsteps:\n- name: work\n  commands: [echo done]\n"})
	createRun(t, ns, "after", srv.RepoURL(repo), nil)
	g.Expect(waitFinished(t, ns, "after", 3*time.Minute).Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded))
	after := stop()["after"]
	g.Expect(after).NotTo(BeEmpty())
	for pod, on := range after {
		g.Expect(on).NotTo(Equal(node), "pod %s of the next run", pod)
	}
}
