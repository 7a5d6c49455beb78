//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrlclient "sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gittest"
)

const (
	ingestRuns    = 25 // of two parallel steps: 50 step logs at once
	ingestSeconds = 60
)

// ingestLines is how many lines of 100 bytes each step prints a second: 200 KiB/s as
// the issue asks, or FLOWCI_INGEST_KIB KiB/s (a load the machine can carry).
func ingestLines() int {
	kib, err := strconv.Atoi(os.Getenv("FLOWCI_INGEST_KIB"))
	if err != nil || kib <= 0 {
		kib = 200
	}
	return kib * 1024 / 100
}

// ingestPipeline prints ingestLines a second for a minute from each of two parallel
// steps.
func ingestPipeline() string {
	cmd := fmt.Sprintf(`awk 'BEGIN { s = sprintf("%%93s", ""); gsub(/ /, "x", s); for (t = 0; t < %d; t++) { for (i = 0; i < %d; i++) printf "%%02d %%04d %%s\n", t, i, s; system("sleep 1") } }'`,
		ingestSeconds, ingestLines())
	return "name: loud\nresources: {cpu: 10m, memory: 16Mi}\nsteps:\n" +
		"- name: a\n  dependsOn: []\n  commands:\n  - " + strconv.Quote(cmd) + "\n" +
		"- name: b\n  dependsOn: []\n  commands:\n  - " + strconv.Quote(cmd) + "\n"
}

// BenchmarkClusterArchive: 50 steps print 200 KiB/s each (FLOWCI_INGEST_KIB) at once, for a minute. The
// archive streams them all; side by side, one `kubectl logs -f` per step pod writes the
// same log to a file, the least any log shipper does. It reports the CPU each spends per
// MiB, the archive's peak memory, and the lag of its stored lines (its histogram).
func BenchmarkClusterArchive(b *testing.B) {
	ctx := context.Background()
	ns := benchNamespace(b)
	repo := gittest.NewRepo(b, map[string]string{"build/flow-ci.yaml": ingestPipeline()})
	srv := gittest.NewHTTPServer(b, repo.Root, gittest.HTTPOptions{Addr: gitHost + ":0"})
	// A fresh archive, so that its peak memory is this benchmark's, with the CPU it
	// asks for as it ships (the e2e overlay asks for less).
	if out, err := kubectl("-n", operatorNS, "set", "resources", "deploy/"+archiveDeploy, "--requests=cpu=250m"); err != nil {
		b.Fatal(out, err)
	}
	// FLOWCI_ARCHIVE_REPLICAS=1 measures the archive without its standby.
	if n := os.Getenv("FLOWCI_ARCHIVE_REPLICAS"); n != "" {
		if out, err := kubectl("-n", operatorNS, "scale", "deploy/"+archiveDeploy, "--replicas="+n); err != nil {
			b.Fatal(out, err)
		}
		b.Cleanup(func() { scaleArchive(b, archiveReplicas) })
	}
	if _, err := kubectl("-n", operatorNS, "rollout", "restart", "deploy/"+archiveDeploy); err != nil {
		b.Fatal(err)
	}
	if out, err := kubectl("-n", operatorNS, "rollout", "status", "deploy/"+archiveDeploy, "--timeout=180s"); err != nil {
		b.Fatal(out, err)
	}
	// Every replica: the leader stores, the standby reads the same streams.
	pids := archivePIDs(b)
	scrape := metricsScraper(b)
	before := scrape()
	cpu0 := procsCPU(b, pids)
	dir := b.TempDir()
	shipper := &kubectlShipper{dir: dir, started: map[string]bool{}}
	for i := range ingestRuns {
		run := &civ1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("loud-%02d", i)},
			Spec: civ1alpha1.PipelineRunSpec{RepoURL: srv.RepoURL(repo), ConcurrencyPolicy: civ1alpha1.ConcurrencyAllow}}
		if err := k8s.Create(ctx, run); err != nil {
			b.Fatal(err)
		}
	}
	peak := shipper.followUntilDone(b, ns, pids)
	cpu1 := procsCPU(b, pids)
	after := scrape()
	kubectlCPU, bytes := shipper.totals()
	mib := float64(bytes) / (1 << 20)
	archiveCPU := cpu1 - cpu0
	b.ReportMetric(mib, "MiB")
	b.ReportMetric(archiveCPU.Seconds()/mib*1000, "archive-cpu-ms/MiB")
	b.ReportMetric(kubectlCPU.Seconds()/mib*1000, "kubectl-cpu-ms/MiB")
	b.ReportMetric(archiveCPU.Seconds()/kubectlCPU.Seconds(), "cpu-ratio")
	b.ReportMetric(float64(peak)/(1<<20), "archive-peak-rss-MiB")
	p99 := histogramQuantile(0.99, before, after)
	b.ReportMetric(p99, "lag-p99-s")
	b.Logf("%d step logs, %.1f MiB: archive (%d replicas) %.2fs CPU (%.0f ms/MiB), %d kubectl logs -f %.2fs (%.0f ms/MiB), ratio %.2f; "+
		"archive peak RSS (of one replica) %.0f MiB; stored-line lag p99 <= %.2fs",
		shipper.count(), mib, len(pids), archiveCPU.Seconds(), archiveCPU.Seconds()/mib*1000, shipper.count(), kubectlCPU.Seconds(),
		kubectlCPU.Seconds()/mib*1000, archiveCPU.Seconds()/kubectlCPU.Seconds(), float64(peak)/(1<<20), p99)
}

// kubectlShipper runs one `kubectl logs -f` per step pod as it starts.
type kubectlShipper struct {
	dir     string
	mu      sync.Mutex
	started map[string]bool
	cpu     time.Duration
	bytes   int64
	wg      sync.WaitGroup
}

// followUntilDone starts a follower for every running step pod until every run has
// ended and the followers have exited; it samples the archive's RSS meanwhile.
func (s *kubectlShipper) followUntilDone(b *testing.B, ns string, pids []int) (peakRSS int64) {
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		var pods corev1.PodList
		if err := k8s.List(context.Background(), &pods, ctrlclient.InNamespace(ns),
			ctrlclient.MatchingLabels{civ1alpha1.LabelComponent: civ1alpha1.ComponentStep}); err != nil {
			b.Fatal(err)
		}
		for i := range pods.Items {
			if p := &pods.Items[i]; p.Status.Phase == corev1.PodRunning && !s.started[p.Name] {
				s.started[p.Name] = true
				s.follow(b, ns, p.Name)
			}
		}
		peakRSS = max(peakRSS, procsRSS(pids))
		var runs civ1alpha1.PipelineRunList
		if err := k8s.List(context.Background(), &runs, ctrlclient.InNamespace(ns)); err != nil {
			b.Fatal(err)
		}
		// A run that is gone finished first: the history limit deletes finished runs.
		done := ingestRuns - len(runs.Items)
		for _, r := range runs.Items {
			if r.Status.Phase.IsFinished() {
				done++
			}
		}
		if done == ingestRuns {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	s.wg.Wait()
	return max(peakRSS, procsRSS(pids))
}

func (s *kubectlShipper) follow(b *testing.B, ns, pod string) {
	f, err := os.Create(filepath.Join(s.dir, pod+".log"))
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command("kubectl", "-n", ns, "logs", "-f", pod)
	cmd.Stdout = f
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = cmd.Wait()
		st, _ := f.Stat()
		_ = f.Close()
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		s.mu.Lock()
		s.cpu += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		s.bytes += st.Size()
		s.mu.Unlock()
	}()
}

func (s *kubectlShipper) totals() (time.Duration, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cpu, s.bytes
}

func (s *kubectlShipper) count() int { return len(s.started) }

// archivePIDs finds the archive's processes on this machine (the local cluster's node),
// one per replica, once those a restart replaced have exited.
func archivePIDs(b *testing.B) []int {
	out, err := kubectl("-n", operatorNS, "get", "deploy/"+archiveDeploy, "-o", "jsonpath={.spec.replicas}")
	if err != nil {
		b.Fatal(out, err)
	}
	replicas, _ := strconv.Atoi(strings.TrimSpace(out))
	for range 60 {
		found := archiveProcesses()
		if len(found) == replicas {
			return found
		}
		time.Sleep(time.Second)
	}
	b.Fatalf("not %d archive processes on this machine", replicas)
	return nil
}

// procsCPU is the processes' CPU time together.
func procsCPU(b *testing.B, pids []int) time.Duration {
	var t time.Duration
	for _, pid := range pids {
		t += procCPU(b, pid)
	}
	return t
}

// procsRSS is the largest resident memory of the processes now: each replica is sized
// on its own.
func procsRSS(pids []int) int64 {
	var m int64
	for _, pid := range pids {
		m = max(m, procRSS(pid))
	}
	return m
}

// procCPU is a process's user and system CPU time (clock ticks of 10 ms).
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// procRSS is a process's resident memory now.
func procRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// metricsScraper reads the archive's lag histogram through its metrics endpoint, as a
// ServiceAccount bound to flow-ci-metrics-reader.
func metricsScraper(b *testing.B) func() map[float64]float64 {
	ctx := context.Background()
	ns := benchNamespace(b)
	if err := k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "scraper"}}); err != nil {
		b.Fatal(err)
	}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-scraper-"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "flow-ci-metrics-reader"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "scraper"}}}
	if err := k8s.Create(ctx, crb); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = k8s.Delete(context.Background(), crb) })
	token, err := kubectl("-n", ns, "create", "token", "scraper")
	if err != nil {
		b.Fatal(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // the bench reads its own cluster's numbers
	return func() map[float64]float64 {
		var pods corev1.PodList
		if err := k8s.List(ctx, &pods, ctrlclient.InNamespace(operatorNS), ctrlclient.MatchingLabels{"app.kubernetes.io/component": "archive"}); err != nil {
			b.Fatalf("the archive's pod: %v", err)
		}
		// Every replica's, summed: only the leader stores, and which one leads may change.
		sum := map[float64]float64{}
		for _, p := range pods.Items { // the new pods, not those still terminating
			if p.DeletionTimestamp.IsZero() && p.Status.Phase == corev1.PodRunning {
				for le, n := range scrapeLag(b, hc, p.Status.PodIP, token) {
					sum[le] += n
				}
			}
		}
		return sum
	}
}

func scrapeLag(b *testing.B, hc *http.Client, ip, token string) map[float64]float64 {
	for range 30 {
		req, _ := http.NewRequest(http.MethodGet, "https://"+ip+":8080/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(token))
		resp, err := hc.Do(req)
		if err == nil && resp.StatusCode == http.StatusOK {
			defer resp.Body.Close()
			return lagBuckets(resp.Body)
		}
		time.Sleep(time.Second)
	}
	b.Fatal("could not scrape the archive's metrics")
	return nil
}

// lagBuckets reads flowci_archive_lag_seconds_bucket{le=...} from an exposition.
func lagBuckets(r io.Reader) map[float64]float64 {
	out := map[float64]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), `flowci_archive_lag_seconds_bucket{le="`)
		if !ok {
			continue
		}
		le, rest, _ := strings.Cut(line, `"}`)
		bound, err := strconv.ParseFloat(le, 64)
		if le == "+Inf" {
			bound, err = math.Inf(1), nil
		}
		v, verr := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err == nil && verr == nil {
			out[bound] = v
		}
	}
	return out
}

// histogramQuantile is the upper bound of the bucket holding quantile q of what was
// observed between two scrapes.
func histogramQuantile(q float64, before, after map[float64]float64) float64 {
	var bounds []float64
	for le := range after {
		bounds = append(bounds, le)
	}
	slices.Sort(bounds)
	total := after[math.Inf(1)] - before[math.Inf(1)]
	for _, le := range bounds {
		if total > 0 && (after[le]-before[le]) >= q*total {
			return le
		}
	}
	return math.NaN()
}

// archiveDown names the operator's handoffs measured while the archive is stopped.
const archiveDown = "flow-ci, archive down"

// scaleArchive sets the archive's replicas and waits until they are so.
func scaleArchive(b *testing.B, replicas int) {
	if replicas == 0 { // the archive comes back even when the benchmark fails meanwhile
		b.Cleanup(func() {
			_, _ = kubectl("-n", operatorNS, "scale", "deploy/"+archiveDeploy, fmt.Sprintf("--replicas=%d", archiveReplicas))
		})
	}
	if out, err := kubectl("-n", operatorNS, "scale", "deploy/"+archiveDeploy, fmt.Sprintf("--replicas=%d", replicas)); err != nil {
		b.Fatalf("scaling the archive: %v %s", err, out)
	}
	if out, err := kubectl("-n", operatorNS, "rollout", "status", "deploy/"+archiveDeploy, "--timeout=180s"); err != nil {
		b.Fatalf("the archive at %d replicas: %v %s", replicas, err, out)
	}
	if replicas == 0 {
		if out, err := kubectl("-n", operatorNS, "wait", "--for=delete", "pod", "-l", "app.kubernetes.io/component=archive", "--timeout=120s"); err != nil {
			b.Fatalf("the archive's pod did not go: %v %s", err, out)
		}
	}
}
