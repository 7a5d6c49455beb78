package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The manager binary as it ships (cmd/manager), run in its own process: P4 reads its
// memory, and the shipped-defaults cell drives it with the flags of config/manager.

var (
	buildOnce  sync.Once
	builtPath  string
	builtError error
)

// managerBinary builds cmd/manager once per test binary, into a directory of its own:
// two checkouts benchmarked one after the other (before and after a change) must not
// run each other's binary.
func managerBinary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "flowci-bench-")
		if err != nil {
			builtError = err
			return
		}
		builtPath = filepath.Join(dir, "flow-ci")
		out, err := exec.Command("go", "build", "-o", builtPath, "../../cmd/manager").CombinedOutput()
		if err != nil {
			builtError = fmt.Errorf("building the manager: %v: %s", err, out)
		}
	})
	if builtError != nil {
		tb.Fatal(builtError)
	}
	return builtPath
}

// removeBinary removes what managerBinary built, once the tests are done.
func removeBinary() {
	if builtPath != "" {
		_ = os.RemoveAll(filepath.Dir(builtPath))
	}
}

// managerProcess is a running manager binary and its endpoints.
type managerProcess struct {
	cmd              *exec.Cmd
	metrics, pprof   string
	token            string // a bearer token allowed to get /metrics
	started          time.Time
	stopOnce         sync.Once
	waitErr, stopErr error
}

// startManagerProcess runs the manager against the API server of kubeconfig with
// args (after the endpoints' own), GOMEMLIMIT as config/manager sets it, and
// FLOWCI_BENCH_MANAGER_ENV's A=1,B=2 added to its environment.
func startManagerProcess(tb testing.TB, cl *cluster, kubeconfig string, args ...string) *managerProcess {
	tb.Helper()
	bin := managerBinary(tb)
	m := &managerProcess{metrics: freeAddr(tb), pprof: freeAddr(tb), token: scraperToken(tb, cl)}
	all := append([]string{"--health-probe-bind-address=" + freeAddr(tb), "--metrics-bind-address=" + m.metrics,
		"--pprof-bind-address=" + m.pprof}, args...)
	m.cmd = exec.Command(bin, all...)
	m.cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "GOMEMLIMIT=200MiB")
	if extra := os.Getenv("FLOWCI_BENCH_MANAGER_ENV"); extra != "" {
		m.cmd.Env = append(m.cmd.Env, strings.Split(extra, ",")...)
	}
	m.cmd.Stdout, m.cmd.Stderr = io.Discard, io.Discard
	m.started = time.Now()
	if err := m.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(m.stop)
	return m
}

func (m *managerProcess) pid() int { return m.cmd.Process.Pid }

func (m *managerProcess) stop() {
	m.stopOnce.Do(func() {
		_ = m.cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- m.cmd.Wait() }()
		select {
		case m.waitErr = <-done:
		case <-time.After(20 * time.Second):
			_ = m.cmd.Process.Kill()
			m.waitErr = <-done
		}
	})
}

// metricsClient reads the manager's metrics endpoint as a scraper does: HTTPS, with
// a bearer token the API server authenticates (TokenReview) and authorizes (get
// /metrics). The endpoint's certificate is self-signed and local, so not verified.
var metricsClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
	TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // a loopback endpoint this process started
}}

// scrape sums the series of the PipelineRun controller that start with each prefix.
func (m *managerProcess) scrape(prefixes ...string) (map[string]float64, error) {
	out := map[string]float64{}
	err := readMetrics(m.metrics, m.token, func(_, series string, v float64) {
		if !strings.Contains(series, `"pipelinerun"`) {
			return
		}
		for _, p := range prefixes {
			if strings.HasPrefix(series, p+"{") {
				out[p] += v
			}
		}
	})
	return out, err
}

// readMetrics gets the metrics endpoint at addr with token and calls each for every
// sample: its metric's name, the series (name and labels) and the value.
func readMetrics(addr, token string, each func(name, series string, v float64)) error {
	req, err := http.NewRequest(http.MethodGet, "https://"+addr+"/metrics", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := metricsClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 2 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		v, _ := strconv.ParseFloat(fields[1], 64)
		name, _, _ := strings.Cut(fields[0], "{")
		each(name, fields[0], v)
	}
	return sc.Err()
}

// scraperToken is a token of a ServiceAccount bound to get /metrics, as Prometheus has.
func scraperToken(tb testing.TB, cl *cluster) string {
	tb.Helper()
	tok, err := newScraperToken(cl)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func newScraperToken(cl *cluster) (string, error) {
	ctx := context.Background()
	const name = "bench-scraper"
	objs := []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name},
			Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: "default", Name: name}}},
	}
	for _, o := range objs {
		if err := cl.c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return "", fmt.Errorf("creating the scraper's %T: %w", o, err)
		}
	}
	cs, err := kubernetes.NewForConfig(cl.cfg)
	if err != nil {
		return "", err
	}
	tr, err := cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: new(int64(24 * 3600))}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("the scraper's token: %w", err)
	}
	return tr.Status.Token, nil
}
