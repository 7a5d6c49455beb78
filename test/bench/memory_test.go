package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/jobtest"
	"github.com/flow-ci/flow-ci/internal/pipeline"
	"github.com/flow-ci/flow-ci/internal/render"
)

// History levels of P4: finished runs in the cluster, each with its clone Job and four
// step Jobs, each Job with its pod (5,000 Jobs and pods at 1,000 runs).
var historyLevels = []int{0, 1000, 5000}

const (
	historyNamespaces = 10 // the runs of many teams
	jobsPerRun        = 5  // the clone and four steps
)

// historyShape is the pipeline of every history run: four sequential steps.
const historyShape = "seq4"

// measureMemory (P4) grows the finished runs in a cluster of its own through levels (so
// that nothing else of the benchmark is in it), and at each starts the real manager binary in its own process (cluster-wide, as it ships; history
// limits off, so that it keeps what is measured), waits for its start-up pass over
// every run to end, and reads its memory: VmRSS when quiet and again after settle (the
// runtime returns freed memory gradually), and VmHWM, the start-up peak, which decides
// an OOM kill at restart. It fails the benchmark when it cannot measure.
func measureMemory(tb testing.TB, levels []int, settle time.Duration) []memory {
	tb.Helper()
	cl := startCluster(tb)
	kubeconfig := writeKubeconfig(tb, cl, tb.TempDir())
	var out []memory
	have := 0
	for _, runs := range levels {
		createHistory(tb, cl, have, runs)
		have = runs
		m := measureAt(tb, cl, kubeconfig, runs, settle)
		tb.Logf("P4 at %d finished runs: %.0f reconciles in %.1f s; VmRSS %.1f MiB quiet, %.1f MiB settled; VmHWM %.1f MiB",
			runs, m.Reconciles, m.SettleSeconds, m.QuietRSSMB, m.RSSMB, m.PeakRSSMB)
		out = append(out, m)
	}
	return out
}

func measureAt(tb testing.TB, cl *cluster, kubeconfig string, runs int, settle time.Duration) memory {
	tb.Helper()
	proc := startManagerProcess(tb, cl, kubeconfig, "--clone-image=flow-ci:bench", "--successful-history-limit=-1", "--failed-history-limit=-1")
	defer proc.stop()
	m := memory{FinishedRuns: runs, Jobs: runs * jobsPerRun, Pods: runs * jobsPerRun}
	// Quiet: every run reconciled once, nothing queued, and no reconcile for 3 s.
	last, since, scraped := -1.0, time.Now(), false
	var lastErr error
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		v, err := proc.scrape("controller_runtime_reconcile_total", "workqueue_depth")
		if err != nil {
			lastErr = err
			continue
		}
		scraped = true
		total, depth := v["controller_runtime_reconcile_total"], v["workqueue_depth"]
		if total != last {
			last, since = total, time.Now()
		}
		if total >= float64(runs) && depth == 0 && time.Since(since) > 3*time.Second {
			break
		}
	}
	if !scraped {
		tb.Fatalf("P4 cannot measure: the metrics endpoint never answered: %v", lastErr)
	}
	if last < float64(runs) {
		tb.Fatalf("P4 cannot measure: %.0f reconciles of %d runs after 5 minutes", last, runs)
	}
	m.Reconciles, m.SettleSeconds = last, since.Sub(proc.started).Seconds()
	m.QuietRSSMB = procStatus(proc.pid(), "VmRSS")
	time.Sleep(settle)
	m.RSSMB, m.PeakRSSMB = procStatus(proc.pid(), "VmRSS"), procStatus(proc.pid(), "VmHWM")
	if m.RSSMB <= 0 || m.PeakRSSMB <= 0 {
		tb.Fatalf("P4 cannot measure: no VmRSS or VmHWM for pid %d", proc.pid())
	}
	m.MemStats = memStats("http://" + proc.pprof + "/debug/pprof/heap?debug=1")
	m.HeapProfile = filepath.Join("..", "..", "bin", "bench", fmt.Sprintf("heap-%d.pprof", runs))
	if err := download("http://"+proc.pprof+"/debug/pprof/heap?gc=1", m.HeapProfile); err != nil {
		tb.Logf("heap profile: %v", err)
	} else if out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=12", "-sample_index=inuse_space", managerBinary(tb), m.HeapProfile).Output(); err == nil {
		m.HeapTop = strings.Split(strings.TrimSpace(string(out)), "\n")
	}
	return m
}

// createHistory creates finished runs from..to-1, with their Jobs and pods, spread over
// historyNamespaces namespaces, as the operator and the cluster leave them: children
// owned by the run and labelled, and the statuses the kubelet and Job controller wrote.
func createHistory(tb testing.TB, cl *cluster, from, to int) {
	tb.Helper()
	if from >= to {
		return
	}
	def, err := pipeline.Parse([]byte(pipelineYAML(historyShape)))
	if err != nil {
		tb.Fatal(err)
	}
	cfg := render.Config{DefaultStepImage: "busybox:bench", CloneImage: "flow-ci:bench"}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Go(func() {
			for i := from + w; i < to; i += 16 {
				if err := createFinishedRun(cl, historyNamespace(tb, cl, i%historyNamespaces), i, &def.Pipeline, cfg); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatalf("history: %v", err)
	}
}

var historyNamespaceNames sync.Map // cluster and index → namespace name

func historyNamespace(tb testing.TB, cl *cluster, i int) string {
	key := fmt.Sprintf("%p/%d", cl, i)
	if ns, ok := historyNamespaceNames.Load(key); ok {
		return ns.(string)
	}
	ns, _ := historyNamespaceNames.LoadOrStore(key, cl.newNamespace(tb, fmt.Sprintf("bench-history-%d", i)))
	return ns.(string)
}

func createFinishedRun(cl *cluster, ns string, i int, p *pipeline.Pipeline, cfg render.Config) error {
	ctx := context.Background()
	run := &civ1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("history-%05d", i)},
		Spec: civ1alpha1.PipelineRunSpec{RepoURL: fmt.Sprintf("https://git.example.com/team/app-%d.git", i%50)}}
	if err := cl.c.Create(ctx, run); err != nil {
		return err
	}
	start := time.Now().Add(-time.Minute)
	t0, t1 := metav1.NewTime(start), metav1.NewTime(start.Add(30*time.Second))
	run.Status = finishedStatus(run, p, t0, t1)
	if err := cl.c.Status().Update(ctx, run); err != nil {
		return fmt.Errorf("finishing %s: %w", run.Name, err)
	}
	jobs := []*batchv1.Job{render.RenderCloneJob(run, cfg, nil)}
	for s := range p.Steps {
		job, err := render.RenderStepJob(run, p, s, benchNode, cfg)
		if err != nil {
			return err
		}
		jobs = append(jobs, job)
	}
	for _, job := range jobs {
		if err := createFinishedJob(ctx, cl.c, job, t0, t1); err != nil {
			return err
		}
	}
	return nil
}

// finishedStatus is the status the operator leaves on a run that succeeded.
func finishedStatus(run *civ1alpha1.PipelineRun, p *pipeline.Pipeline, t0, t1 metav1.Time) civ1alpha1.PipelineRunStatus {
	st := civ1alpha1.PipelineRunStatus{Phase: civ1alpha1.PhaseSucceeded, Commit: digest(run.Name)[:40], ShortCommit: digest(run.Name)[:7],
		Branch: "main", PipelineName: "bench", StartTime: &t0, CompletionTime: &t1, Progress: fmt.Sprintf("%d/%d", len(p.Steps), len(p.Steps)),
		ObservedGeneration: 1,
		Conditions: []metav1.Condition{
			{Type: civ1alpha1.ConditionSucceeded, Status: metav1.ConditionTrue, Reason: civ1alpha1.ReasonSucceeded, ObservedGeneration: 1,
				Message: fmt.Sprintf("all %d steps succeeded", len(p.Steps)), LastTransitionTime: t1},
		}}
	for s := range p.Steps {
		code := int32(0)
		st.Steps = append(st.Steps, civ1alpha1.StepStatus{Name: p.Steps[s].Name, Index: int32(s), Phase: civ1alpha1.StepSucceeded,
			JobName: render.StepJobName(run, s, p.Steps[s].Name), StartTime: &t0, CompletionTime: &t1, ExitCode: &code, Attempts: 1})
	}
	return st
}

// createFinishedJob creates job, its pod, and their final statuses.
func createFinishedJob(ctx context.Context, c client.Client, job *batchv1.Job, t0, t1 metav1.Time) error {
	if err := c.Create(ctx, job); err != nil {
		return err
	}
	pod := jobtest.PodFor(job)
	pod.Spec.NodeName = benchNode
	if err := c.Create(ctx, pod); err != nil {
		return err
	}
	job.Status = jobStatuses(pod.UID, t0.Time, t1.Time)[4]
	job.Status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
	if err := c.Status().Update(ctx, job); err != nil {
		return err
	}
	pod.Status = succeededStatus(pod, t0, t1)
	return c.Status().Update(ctx, pod)
}

// writeKubeconfig writes the cluster's admin credentials for the manager binary.
func writeKubeconfig(tb testing.TB, cl *cluster, dir string) string {
	tb.Helper()
	cfg := cl.cfg
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	kc.CurrentContext = "envtest"
	path := filepath.Join(dir, "envtest.kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		tb.Fatal(err)
	}
	return path
}

func freeAddr(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func procStatus(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

func download(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

// memStats picks the runtime's own accounting from the heap profile's text form.
func memStats(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var out []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		for _, k := range []string{"# HeapAlloc", "# HeapSys", "# HeapIdle", "# HeapInuse", "# HeapReleased", "# Stack =", "# Sys =", "# NumGC", "# NextGC"} {
			if strings.HasPrefix(sc.Text(), k) {
				out = append(out, strings.TrimPrefix(sc.Text(), "# "))
			}
		}
	}
	return strings.Join(out, ", ")
}
