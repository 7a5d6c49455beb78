package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/render"
)

// historyPerBranch is what the shipped defaults keep of each branch: a branch at its
// limit deletes one run for each run that finishes.
const historyPerBranch = 10

// historyLabel marks the runs the harness put in as history, which a cell does not wait
// for.
const historyLabel = "bench.flowci.dev/history"

// shippedArgs are config/manager's arguments, plus what running outside a pod needs:
// the Lease's namespace, the images, and loopback allowed for git and the forge. The
// triggers' hourly run budget is raised: it counts the runs created in the last hour,
// and the history the cell puts in (10 runs per trigger) was all created a moment ago,
// where a real one spans days.
func shippedArgs(leaseNamespace string) []string {
	return []string{"--leader-elect", "--leader-election-namespace=" + leaseNamespace,
		"--clone-image=flow-ci:bench", "--default-step-image=busybox:bench", "--git-allowed-networks=127.0.0.0/8",
		"--trigger-runs-per-hour=100000"}
}

// forge answers a forge's commit status API (Gitea's) on loopback and counts posts: the
// forge's side is not what is measured, only that the operator posts.
type forge struct {
	srv   *httptest.Server
	posts atomic.Int64
}

func startForge(tb testing.TB) *forge {
	f := &forge{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.Contains(r.URL.Path, "/statuses/") {
			http.NotFound(w, r)
			return
		}
		f.posts.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":1}`))
	}))
	tb.Cleanup(f.srv.Close)
	return f
}

// shippedCell is a shipped cell under way: when its runs started, its forge, and the
// archive beside the manager (shipped+archive; nil otherwise).
type shippedCell struct {
	start   time.Time
	forge   *forge
	archive *archiveProcess
	// archiveAt are the archive's metrics when the cell's counts start.
	archiveAt map[string]float64
	stop      func()
}

func isShipped(variant string) bool { return variant == "shipped" || variant == "shipped+archive" }

// runShippedCell drives the manager binary with the shipped defaults: cluster-wide, its
// three controllers, leader election, history limits of 10. Each of the cell's runs
// comes from a PipelineTrigger polling its repository on loopback and reporting to a
// forge on loopback, on a branch that already holds historyPerBranch finished runs.
// Every request of the manager is counted through a proxy. shipped+archive runs the
// archive beside it, started first and caught up with the history, uncounted.
func runShippedCell(tb testing.TB, git *gitServer, c cell, counts *apiCounts, ns string) *shippedCell {
	tb.Helper()
	ctx := context.Background()
	sc := &shippedCell{forge: startForge(tb)}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "forge-token"}, StringData: map[string]string{"token": "bench-token"}}
	if err := k8sClient.Create(ctx, secret); err != nil {
		tb.Fatal(err)
	}
	triggers := make([]*civ1alpha1.PipelineTrigger, c.Runs)
	for i := range triggers {
		triggers[i] = &civ1alpha1.PipelineTrigger{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("t-%04d", i)},
			Spec: civ1alpha1.PipelineTriggerSpec{RepoURL: git.repoURL(c.Shape, i), Branches: []string{"main"}, Suspend: true,
				OnNewBranch: civ1alpha1.NewBranchBuild,
				Report:      &civ1alpha1.CommitStatusReport{Provider: "gitea", URL: sc.forge.srv.URL, SecretRef: civ1alpha1.SecretReference{Name: secret.Name}}}}
		if err := k8sClient.Create(ctx, triggers[i]); err != nil {
			tb.Fatal(err)
		}
		createTriggerHistory(tb, triggers[i])
	}
	stopArchive := func() {}
	if c.Variant == "shipped+archive" {
		stopLogs := serveNodeLogs(tb, packageCluster())
		sc.archive = startArchiveProcess(tb, packageCluster(), ns)
		waitArchive(tb, ns, sc.archive, historyPerBranch*c.Runs)
		stopArchive = func() { sc.archive.stopChecked(tb); stopLogs() }
	}
	kubeconfig := startCountingProxy(tb, counts)
	proc := startManagerProcess(tb, packageCluster(), kubeconfig, shippedArgs(ns)...)
	waitLeader(tb, ns, proc)
	counts.reset() // the start-up lists and the first Lease are not the cell's
	if sc.archive != nil {
		var err error
		if sc.archiveAt, err = sc.archive.sample(); err != nil {
			tb.Fatal(err)
		}
	}
	sc.start = time.Now()
	for _, t := range triggers {
		patch := []byte(`{"spec":{"suspend":false}}`)
		if err := k8sClient.Patch(ctx, t, client.RawPatch("application/merge-patch+json", patch)); err != nil {
			tb.Fatal(err)
		}
	}
	sc.stop = func() { proc.stop(); stopArchive() }
	return sc
}

// createTriggerHistory gives the trigger's branch historyPerBranch finished runs, as
// the trigger would have left them.
func createTriggerHistory(tb testing.TB, t *civ1alpha1.PipelineTrigger) {
	tb.Helper()
	ctx := context.Background()
	for k := range historyPerBranch {
		commit := digest(fmt.Sprintf("%s/%d", t.Name, k))[:40]
		run := render.TriggeredRun(t, render.TriggeredRunName(t, "main", commit), "main", commit, "")
		run.Labels[historyLabel] = "true"
		if err := k8sClient.Create(ctx, run); err != nil {
			tb.Fatal(err)
		}
		end := time.Now().Add(-time.Duration(historyPerBranch-k) * time.Minute)
		t0, t1 := metav1.NewTime(end.Add(-30*time.Second)), metav1.NewTime(end)
		run.Status = civ1alpha1.PipelineRunStatus{Phase: civ1alpha1.PhaseSucceeded, Commit: commit, ShortCommit: commit[:7], Branch: "main",
			PipelineName: "bench", StartTime: &t0, CompletionTime: &t1, ObservedGeneration: 1,
			Conditions: []metav1.Condition{{Type: civ1alpha1.ConditionSucceeded, Status: metav1.ConditionTrue, Reason: civ1alpha1.ReasonSucceeded,
				ObservedGeneration: 1, Message: "all steps succeeded", LastTransitionTime: t1}}}
		if err := k8sClient.Status().Update(ctx, run); err != nil {
			tb.Fatal(err)
		}
	}
}

// operatorLeaseID is the manager's leader election Lease (cmd/manager/manager.go); the
// archive's, in the same namespace, is another.
const operatorLeaseID = "flow-ci.flowci.dev"

// waitLeader waits until the manager holds its Lease and its metrics answer: its
// controllers have started.
func waitLeader(tb testing.TB, ns string, proc *managerProcess) {
	tb.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for ; time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if _, err := proc.scrape("workqueue_depth"); err == nil && leaseHeld(ns, operatorLeaseID) {
			return
		}
	}
	tb.Fatalf("the manager did not become leader in %s within 2 minutes", ns)
}

// shippedWrites splits what the shipped manager wrote: the Lease's renewals, the
// trigger's own writes (its status, its events, and the runs it creates) and the
// reporter's record of each commit status it posted (an annotation on the run, there for
// the trigger's report) apart from the writes of running the pipelines, which P3's
// budget covers (history deletes included). The goal table shows P3 with the record
// and without it.
func shippedWrites(byResource map[string]int64) (runWrites, lease, trigger, record int64) {
	for k, v := range byResource {
		method, resource, _ := strings.Cut(k, " ")
		if method != http.MethodPost && method != http.MethodPut && method != http.MethodPatch && method != http.MethodDelete {
			continue // a read (GET, LIST), or a refused write ("409 PATCH ...")
		}
		switch {
		case resource == "leases":
			lease += v
		case resource == "pipelinetriggers/status", k == "POST pipelineruns", k == "POST events of PipelineTrigger":
			trigger += v
		case k == "PATCH pipelineruns": // the reporter's annotation, the only run write that is not status
			record += v
		default:
			runWrites += v
		}
	}
	return runWrites, lease, trigger, record
}

// settleShipped gives the shipped manager up to 30 s after its runs finished to post
// their final commit statuses and delete the history beyond its limits, which follow a
// run's end, so that the counts hold all of a run's work.
func settleShipped(counts *apiCounts, f *forge, runs int) {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if f.posts.Load() >= int64(2*runs) && counts.breakdown()["DELETE pipelineruns"] >= int64(runs) {
			return
		}
	}
}

func TestShippedWrites(t *testing.T) {
	runs, lease, trigger, record := shippedWrites(map[string]int64{
		"PATCH pipelineruns/status": 7, "POST jobs": 6, "DELETE pipelineruns": 1, "PATCH pipelineruns": 1,
		"LIST pods of an ended Job": 6, "GET secrets": 2, "409 PATCH pipelinetriggers/status": 3,
		"PUT leases": 4, "GET leases": 1,
		"PATCH pipelinetriggers/status": 2, "POST pipelineruns": 1, "POST events of PipelineTrigger": 1,
	})
	if runs != 14 || lease != 4 || trigger != 4 || record != 1 {
		t.Errorf("shippedWrites = %d, %d, %d, %d; want 14 runs' (no reads, no refused writes), 4 Lease, 4 trigger, 1 record", runs, lease, trigger, record)
	}
}
