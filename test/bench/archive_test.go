package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/internal/gittest"
)

// The run archive (`flow-ci archive`, config/archive) in its own process beside the
// shipped manager: the shipped+archive cell. It talks to the API server directly, not
// through the counting proxy, so that P3 stays the operator's own writes; what the
// archive costs the operator shows in P1 and in the operator's refused writes (a
// status patch made stale by the archive's finalizer patch is a 409).

// archiveLeaseID is the archive's leader election Lease (cmd/manager/archive.go).
const archiveLeaseID = "flow-ci-archive.flowci.dev"

// archiveProcess is a running archive and its endpoints.
type archiveProcess struct {
	cmd      *exec.Cmd
	metrics  string
	probe    string
	token    string        // a bearer token allowed to get /metrics
	logPath  string        // its stderr, shown when the test fails
	exited   chan struct{} // closed when it has exited; waitErr is then set
	stopOnce sync.Once
	waitErr  error
}

// startArchiveProcess runs the archive with config/archive's flags against cl's API
// server, leading in ns, its endpoints on free loopback ports. Its embedded store is
// one for the test binary (beside the binary, removed with it), kept from one cell to
// the next as a volume is across restarts: the runs of earlier cells that an earlier
// archive stored are only looked up again, not recorded anew. Its serving certificate
// comes from files: without them it would keep one in a Secret of ns and publish it in
// a ConfigMap, writes at start-up that are not what the cell measures.
func startArchiveProcess(tb testing.TB, cl *cluster, ns string) *archiveProcess {
	tb.Helper()
	dir := tb.TempDir()
	certPEM, keyPEM := gittest.SelfSignedPEM(tb, "localhost")
	cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	for path, b := range map[string][]byte{cert: certPEM, key: keyPEM} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	a := &archiveProcess{metrics: freeAddr(tb), probe: freeAddr(tb), token: scraperToken(tb, cl), logPath: filepath.Join(dir, "archive.log")}
	bin := managerBinary(tb)
	a.cmd = exec.Command(bin, "archive", "--store=embedded", "--data-dir="+filepath.Join(filepath.Dir(bin), "archive-data"),
		"--listen="+freeAddr(tb), "--leader-elect", "--metrics-bind-address="+a.metrics, "--health-probe-bind-address="+a.probe,
		"--namespace="+ns, "--tls-cert-file="+cert, "--tls-key-file="+key,
		"--standby-window=0") // one process: no standby, and so no wait for one to warm up
	a.cmd.Env = append(os.Environ(), "KUBECONFIG="+writeKubeconfig(tb, cl, dir), "GOMEMLIMIT=400MiB")
	logFile, err := os.Create(a.logPath)
	if err != nil {
		tb.Fatal(err)
	}
	defer logFile.Close() // the process has its own descriptor
	a.cmd.Stdout, a.cmd.Stderr = io.Discard, logFile
	if err := a.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	a.exited = make(chan struct{})
	go func() { a.waitErr = a.cmd.Wait(); close(a.exited) }()
	tb.Cleanup(func() {
		a.stop()
		if tb.Failed() {
			tb.Logf("the archive's log:\n%s", a.logTail(100))
		}
	})
	return a
}

// stop interrupts the archive (it releases its Lease) and waits for it to exit.
func (a *archiveProcess) stop() {
	a.stopOnce.Do(func() {
		_ = a.cmd.Process.Signal(os.Interrupt)
		select {
		case <-a.exited:
		case <-time.After(20 * time.Second):
			_ = a.cmd.Process.Kill()
			<-a.exited
		}
	})
}

// stopChecked stops the archive and fails the test if it had exited on its own or did
// not exit cleanly.
func (a *archiveProcess) stopChecked(tb testing.TB) {
	exited := a.hasExited()
	a.stop()
	if exited || a.waitErr != nil {
		tb.Errorf("the archive exited (%v, before the cell's end: %t); its log:\n%s", a.waitErr, exited, a.logTail(30))
	}
}

func (a *archiveProcess) hasExited() bool {
	select {
	case <-a.exited:
		return true
	default:
		return false
	}
}

// logTail is the last n lines of the archive's log.
func (a *archiveProcess) logTail(n int) string {
	b, err := os.ReadFile(a.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// sample reads the archive's metrics: each series, and their sum by name.
func (a *archiveProcess) sample() (map[string]float64, error) {
	out := map[string]float64{}
	err := readMetrics(a.metrics, a.token, func(name, series string, v float64) {
		out[name] += v
		if series != name {
			out[series] = v
		}
	})
	return out, err
}

// waitArchive waits until the archive leads (its Lease held), is ready, and has caught
// up: at least records run records stored (the history the cell put in, which an
// archive running all along would have stored long ago), its queue empty and no record
// stored since the last look. The operator then starts beside an archive at rest, as it
// would be in a cluster. The archive catches up with every namespace's runs, the
// earlier cells' too: the first shipped+archive cell of a benchmark records those of
// the shipped cells before it.
func waitArchive(tb testing.TB, ns string, a *archiveProcess, records int) {
	tb.Helper()
	var last map[string]float64
	t0 := time.Now()
	deadline := t0.Add(10 * time.Minute)
	for ; time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if a.hasExited() {
			break
		}
		if !leaseHeld(ns, archiveLeaseID) || !probeReady(a.probe) {
			continue
		}
		m, err := a.sample()
		if err != nil {
			continue
		}
		stored := m["flowci_archive_records_total"]
		if stored >= float64(records) && m["workqueue_depth"] == 0 && stored == last["flowci_archive_records_total"] {
			tb.Logf("the archive caught up in %.1f s: %s", time.Since(t0).Seconds(), archiveSummary(m))
			return
		}
		last = m
	}
	tb.Fatalf("the archive did not catch up with %d records in %s within 10 minutes (exited: %t; last seen: %s, queue %.0f); its log:\n%s",
		records, ns, a.hasExited(), archiveSummary(last), last["workqueue_depth"], a.logTail(30))
}

// leaseHeld says whether the Lease ns/name has a holder.
func leaseHeld(ns, name string) bool {
	l := &coordinationv1.Lease{}
	err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, l)
	return err == nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != ""
}

func probeReady(addr string) bool {
	resp, err := http.Get("http://" + addr + "/readyz") //nolint:gosec,noctx // a loopback endpoint this process started
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// archiveSummary says what the archive did (its counters m): records stored, runs
// released, log bytes stored, and its errors by operation.
func archiveSummary(m map[string]float64) string {
	var ops []string
	for k, v := range m {
		if op, ok := strings.CutPrefix(k, `flowci_archive_errors_total{operation="`); ok && v > 0 {
			ops = append(ops, fmt.Sprintf("%s %.0f", strings.TrimSuffix(op, `"}`), v))
		}
	}
	sort.Strings(ops)
	errs := fmt.Sprintf("%.0f errors", m["flowci_archive_errors_total"])
	if len(ops) > 0 {
		errs += " (" + strings.Join(ops, ", ") + ")"
	}
	return fmt.Sprintf("%.0f records stored, %.0f runs released, %.0f log bytes stored, %s, %.0f failed reconciles",
		m["flowci_archive_records_total"], m["flowci_archive_released_total"], m["flowci_archive_log_bytes_total"],
		errs, m["controller_runtime_reconcile_errors_total"])
}

// archiveMetrics waits up to 30 s for the archive to have recorded runs runs since the
// cell's start (it records a run once the run ended and its logs are read), then gives
// what it did over the cell: the increase of its counters (records, releases and errors
// by reason and operation, log bytes) and of its reconciles. None without an archive.
func (sc *shippedCell) archiveMetrics(tb testing.TB, runs int) map[string]float64 {
	if sc.archive == nil {
		return nil
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		m, err := sc.archive.sample()
		if err != nil {
			tb.Errorf("the archive's metrics: %v", err)
			return nil
		}
		out := archiveCounters(m, sc.archiveAt)
		if out["flowci_archive_records_total"] >= float64(runs) || time.Now().After(deadline) {
			return out
		}
	}
}

// archiveCounters are the archive's counters in m less their values in since.
func archiveCounters(m, since map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		if (strings.HasPrefix(k, "flowci_archive_") && strings.Contains(k, "_total")) ||
			k == "controller_runtime_reconcile_total" || k == "controller_runtime_reconcile_errors_total" {
			out[k] = v - since[k]
		}
	}
	return out
}
