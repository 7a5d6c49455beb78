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
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/jobtest"
	"github.com/flow-ci/flow-ci/internal/pipeline"
	"github.com/flow-ci/flow-ci/internal/render"
)

const (
	historyRuns = 1000
	historyJobs = 5000 // five per run, each with its pod
)

// measureMemory (P4) puts exactly historyRuns finished runs and historyJobs Jobs with
// their pods in a fresh cluster, starts the real manager binary against it in its own
// process, waits for its start-up pass over every run to end, and reads its memory.
func measureMemory(tb testing.TB) *memory {
	tb.Helper()
	dir := filepath.Join("..", "..", "bin", "bench")
	bin := filepath.Join(dir, "flow-ci")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/manager").CombinedOutput(); err != nil {
		tb.Fatalf("building the manager: %v: %s", err, out)
	}
	kubeconfig := writeKubeconfig(tb, dir)
	createHistory(tb)
	probe, metricsAddr, pprof := freeAddr(tb), freeAddr(tb), freeAddr(tb)
	cmd := exec.Command(bin, "--clone-image=flow-ci:bench", "--successful-history-limit=-1", "--failed-history-limit=-1",
		"--health-probe-bind-address="+probe, "--metrics-bind-address="+metricsAddr, "--pprof-bind-address="+pprof)
	// GOMEMLIMIT as config/manager sets it; FLOWCI_BENCH_MANAGER_ENV adds more (A=1,B=2).
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "GOMEMLIMIT=200MiB")
	if extra := os.Getenv("FLOWCI_BENCH_MANAGER_ENV"); extra != "" {
		cmd.Env = append(cmd.Env, strings.Split(extra, ",")...)
	}
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	start := time.Now()
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	m := &memory{FinishedRuns: historyRuns, Jobs: historyJobs, Pods: historyJobs}
	// Quiet: every run reconciled once, nothing queued, and no reconcile for 3 s.
	last, since := -1.0, time.Now()
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		total, depth := scrape(metricsAddr)
		if total != last {
			last, since = total, time.Now()
		}
		if total >= historyRuns && depth == 0 && time.Since(since) > 3*time.Second {
			break
		}
	}
	m.Reconciles, m.SettleSeconds = last, since.Sub(start).Seconds()
	m.QuietRSSMB = procStatus(cmd.Process.Pid, "VmRSS")
	// The Go runtime returns the start-up burst's freed memory to the OS gradually:
	// read RSS again once it had time to (the operator runs for days).
	time.Sleep(30 * time.Second)
	m.RSSMB, m.PeakRSSMB = procStatus(cmd.Process.Pid, "VmRSS"), procStatus(cmd.Process.Pid, "VmHWM")
	m.MemStats = memStats("http://" + pprof + "/debug/pprof/heap?debug=1")
	m.HeapProfile = filepath.Join(dir, "heap.pprof")
	if err := download("http://"+pprof+"/debug/pprof/heap?gc=1", m.HeapProfile); err != nil {
		tb.Logf("heap profile: %v", err)
	} else if out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=12", "-sample_index=inuse_space", bin, m.HeapProfile).Output(); err == nil {
		m.HeapTop = strings.Split(strings.TrimSpace(string(out)), "\n")
	}
	return m
}

// createHistory creates the finished runs, with their Jobs and pods, in a fresh
// namespace, as the operator leaves them: children owned by the run and labelled.
func createHistory(tb testing.TB) {
	tb.Helper()
	ns := newNamespace(tb, "bench-history")
	def, err := pipeline.Parse([]byte(pipelineYAML("seq5")))
	if err != nil {
		tb.Fatal(err)
	}
	cfg := render.Config{DefaultStepImage: "busybox:bench", CloneImage: "flow-ci:bench"}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < historyRuns; i += 16 {
				if err := createFinishedRun(ns, i, &def.Pipeline, cfg); err != nil {
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

func createFinishedRun(ns string, i int, p *pipeline.Pipeline, cfg render.Config) error {
	ctx := context.Background()
	run := &civ1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("history-%04d", i)},
		Spec: civ1alpha1.PipelineRunSpec{RepoURL: fmt.Sprintf("https://git.example.com/team/app-%d.git", i%50)}}
	if err := k8sClient.Create(ctx, run); err != nil {
		return err
	}
	now := metav1.Now()
	run.Status = civ1alpha1.PipelineRunStatus{Phase: civ1alpha1.PhaseSucceeded, Commit: strings.Repeat("a", 40), ShortCommit: "aaaaaaa",
		Branch: "main", PipelineName: "bench", StartTime: &now, CompletionTime: &now, Progress: "5/5",
		Conditions: []metav1.Condition{{Type: civ1alpha1.ConditionSucceeded, Status: metav1.ConditionTrue, Reason: civ1alpha1.ReasonSucceeded, Message: "all 5 steps succeeded", LastTransitionTime: now}}}
	for s := range p.Steps {
		run.Status.Steps = append(run.Status.Steps, civ1alpha1.StepStatus{Name: p.Steps[s].Name, Index: int32(s), Phase: civ1alpha1.StepSucceeded,
			JobName: render.StepJobName(run, s, p.Steps[s].Name), StartTime: &now, CompletionTime: &now})
	}
	if err := k8sClient.Status().Update(ctx, run); err != nil {
		return fmt.Errorf("finishing %s: %w", run.Name, err)
	}
	for s := range historyJobs / historyRuns {
		job, err := render.RenderStepJob(run, p, s, benchNode, cfg)
		if err != nil {
			return err
		}
		if err := k8sClient.Create(ctx, job); err != nil {
			return err
		}
		job.Status = batchv1.JobStatus{StartTime: &now, CompletionTime: &now, Succeeded: 1, Conditions: []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now}}}
		if err := k8sClient.Status().Update(ctx, job); err != nil {
			return err
		}
		pod := jobtest.PodFor(job)
		pod.Spec.NodeName = benchNode
		if err := k8sClient.Create(ctx, pod); err != nil {
			return err
		}
		pod.Status = corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{Name: "step", Image: "busybox:bench",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now}}}}}
		if err := k8sClient.Status().Update(ctx, pod); err != nil {
			return err
		}
	}
	return nil
}

// writeKubeconfig writes envtest's admin credentials for the manager binary.
func writeKubeconfig(tb testing.TB, dir string) string {
	tb.Helper()
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

// scrape reads the manager's reconcile total and workqueue depth of the PipelineRun
// controller from its metrics endpoint.
func scrape(addr string) (total, depth float64) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1, -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) != 2 || !strings.Contains(line, `"pipelinerun"`) {
			continue
		}
		v, _ := strconv.ParseFloat(fields[1], 64)
		switch {
		case strings.HasPrefix(line, "controller_runtime_reconcile_total{"):
			total += v
		case strings.HasPrefix(line, "workqueue_depth{"):
			depth += v
		}
	}
	return total, depth
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
