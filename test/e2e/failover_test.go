//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"

	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gittest"
)

// failoverPipeline prints numbered lines while it sleeps, so that a step is running
// (and its log being archived) whenever a replica is killed.
const failoverPipeline = `name: steady
steps:
- name: one
  commands: ['for i in $(seq 1 100); do echo "line $i"; sleep 0.1; done']
- name: two
  commands: ['for i in $(seq 1 100); do echo "line $i"; sleep 0.1; done']
- name: three
  commands: ['for i in $(seq 1 100); do echo "line $i"; sleep 0.1; done']
`

// failoverLines is how many lines each step of failoverPipeline prints.
const failoverLines = 100

// TestLeaderKilledDuringRuns: the operator's leader is killed (SIGKILL: its lease is not
// released) twice at random moments while six runs of three steps go on, the first time
// together with the archive's leader. The standby takes over each time: every run
// Succeeds, no Job is made twice and no step runs twice, and the archive keeps every line
// of every step. Not parallel: it stalls the operator on purpose.
func TestLeaderKilledDuringRuns(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	waitReplicas(t, g, operatorDeploy, 2)
	repo, srv := gitServer(t, map[string]string{"build/flow-ci.yaml": failoverPipeline}, gittest.HTTPOptions{})
	seen := watchChildren(t, ns)
	names := []string{"r-0", "r-1", "r-2", "r-3", "r-4", "r-5"}
	for _, n := range names {
		createRun(t, ns, n, srv.RepoURL(repo), nil)
	}
	var failovers []time.Duration
	for i := range 2 {
		time.Sleep(time.Duration(2000+rand.N(4000)) * time.Millisecond)
		waitReplicas(t, g, operatorDeploy, 2)
		g.Expect(unfinished(g, ns)).NotTo(BeZero(), "runs still going at kill %d", i+1)
		holder := operatorHolder(t)
		leader, _, _ := strings.Cut(holder, "_")
		killed := time.Now()
		g.Expect(signalPod(leader, false, syscall.SIGKILL)).To(Succeed())
		if i == 0 {
			archive, err := archiveLeader()
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(sigkillArchive(archive)).To(Succeed())
		}
		// The standby, or the killed pod's restarted container: whichever takes the lease.
		var next string
		g.Eventually(func() string { next = operatorHolder(t); return next }).WithTimeout(time.Minute).WithPolling(200 * time.Millisecond).
			ShouldNot(Equal(holder))
		handoff, ok := seen.firstJobAfter(killed, time.Minute)
		g.Expect(ok).To(BeTrue(), "a Job made after kill %d", i+1)
		failovers = append(failovers, handoff.Sub(killed))
		t.Logf("kill %d: leader %s killed; %s leads; first Job created %.1fs after the kill", i+1, leader, next, handoff.Sub(killed).Seconds())
	}
	for _, n := range names {
		run := waitFinished(t, ns, n, 5*time.Minute)
		g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded), "%s: %s", n, toJSON(run.Status))
	}
	seen.expectOnce(t, len(names)*4) // a clone and three steps each
	t.Logf("failover (leader killed -> first Job by the new leader): %v", failovers)

	token := reader(t, g, ns, "full", []rbacv1.PolicyRule{runReader, logReader})
	c := archiveClient(t, g, token)
	for _, n := range names {
		g.Eventually(func(g Gomega) {
			rec, err := c.Get(ctx, ns, n)
			g.Expect(err).NotTo(HaveOccurred())
			steps := 0
			for _, s := range rec.Streams {
				if !strings.HasPrefix(s.Name, "step-") {
					continue
				}
				steps++
				g.Expect(s.Missing).To(BeEmpty(), "%s %s", n, s.Name)
				var got strings.Builder
				_, err := c.Log(ctx, ns, n, s.Name, &got)
				g.Expect(err).NotTo(HaveOccurred())
				// The step's own lines, in order, each once (the shell's trace of the
				// command comes first).
				var lines, want []string
				for _, l := range strings.Split(got.String(), "\n") {
					if strings.HasPrefix(l, "line ") {
						lines = append(lines, l)
					}
				}
				for i := 1; i <= failoverLines; i++ {
					want = append(want, fmt.Sprintf("line %d", i))
				}
				g.Expect(lines).To(Equal(want), "%s %s: every line once", n, s.Name)
			}
			g.Expect(steps).To(Equal(3))
		}).WithTimeout(2 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
	}
}

// TestPausedLeaderWritesNothing: the leader's process is stopped (SIGSTOP) past its lease
// while runs go on, so the standby takes over; then it is resumed. The API server's audit
// log shows no write from the old leader after the new leader's first: its fence
// (internal/leasefence) refuses every write once the renew deadline passed, and it exits
// when its elector sees the lease gone. Not parallel: it stalls the operator on purpose.
func TestPausedLeaderWritesNothing(t *testing.T) {
	audit := auditLog(t)
	g := NewWithT(t)
	ns := newNamespace(t)
	waitReplicas(t, g, operatorDeploy, 2)
	repo, srv := gitServer(t, map[string]string{"build/flow-ci.yaml": failoverPipeline}, gittest.HTTPOptions{})
	seen := watchChildren(t, ns)
	names := []string{"p-0", "p-1", "p-2"}
	for _, n := range names {
		createRun(t, ns, n, srv.RepoURL(repo), nil)
	}
	time.Sleep(time.Duration(2000+rand.N(3000)) * time.Millisecond)
	old := operatorLeader(t)
	oldIP := podIP(t, g, old)
	restarts := restartCount(t, g, old)
	paused := time.Now()
	g.Expect(signalPod(old, false, syscall.SIGSTOP)).To(Succeed())
	var next string
	g.Eventually(func() string { next = operatorLeader(t); return next }).WithTimeout(time.Minute).WithPolling(200 * time.Millisecond).
		ShouldNot(Equal(old))
	handoff, ok := seen.firstJobAfter(paused, time.Minute)
	g.Expect(ok).To(BeTrue(), "a Job made after the pause")
	time.Sleep(3 * time.Second) // the new leader writes for a while; then the old one wakes
	resumed := time.Now()
	g.Expect(signalPod(old, false, syscall.SIGCONT)).To(Succeed())
	t.Logf("leader %s paused for %.1fs; %s took over and made its first Job %.1fs after the pause",
		old, resumed.Sub(paused).Seconds(), next, handoff.Sub(paused).Seconds())
	g.Eventually(func() int32 { return restartCount(t, g, old) }).WithTimeout(time.Minute).WithPolling(time.Second).
		Should(BeNumerically(">", restarts), "the old leader exits once it sees the lease gone")
	for _, n := range names {
		run := waitFinished(t, ns, n, 5*time.Minute)
		g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded), "%s: %s", n, toJSON(run.Status))
	}
	seen.expectOnce(t, len(names)*4)

	writes := operatorWrites(t, audit, paused)
	newIP := podIP(t, g, next)
	var first time.Time
	for _, w := range writes {
		if w.ip == newIP && (first.IsZero() || w.at.Before(first)) {
			first = w.at
		}
	}
	g.Expect(first.IsZero()).To(BeFalse(), "the new leader wrote")
	var late []string
	oldWrites := 0
	for _, w := range writes {
		if w.ip == oldIP {
			oldWrites++
			if !w.at.Before(first) {
				late = append(late, w.String())
			}
		}
	}
	g.Expect(late).To(BeEmpty(), "writes of the old leader after the new leader's first (%s)", first.Format(time.RFC3339Nano))
	// What the old leader tried once it woke: its fence refused it (logged before it exited).
	prev, _ := kubectl("-n", operatorNS, "logs", old, "--previous")
	t.Logf("the old leader's fence refused %d writes after it woke", strings.Count(prev, "lease was not renewed within the renew deadline"))
	t.Logf("audit: %d writes by the operator since the pause; the old leader's last %d before the new leader's first at +%.1fs",
		len(writes), oldWrites, first.Sub(paused).Seconds())
}

// unfinished counts the runs of ns that have not finished.
func unfinished(g Gomega, ns string) int {
	list := &civ1alpha1.PipelineRunList{}
	g.Expect(k8s.List(context.Background(), list, client.InNamespace(ns))).To(Succeed())
	n := 0
	for _, r := range list.Items {
		if !r.Status.Phase.IsFinished() {
			n++
		}
	}
	return n
}
