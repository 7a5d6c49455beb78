//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlclient "sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	archiveclient "github.com/flow-ci/flow-ci/internal/archive/client"
	"github.com/flow-ci/flow-ci/internal/gittest"
)

const (
	archiveDeploy = "flow-ci-archive"
	archiveSvc    = "flow-ci-archive"
	// archiveReplicas is config/archive's: a leader and a standby.
	archiveReplicas = 2
	// Each burst of the known sequence, and how many: 270,000 lines of 78 bytes
	// (20.1 MiB) in 180 s, so that the kubelet rotates the log (at 1 MiB) 20 times
	// while the archive streams it. The kubelet serves only its current file, which
	// holds the last 9 s of this output: a leader killed with no standby loses what
	// a rotation moves out of it before the next one reads; a standby that read the
	// same stream loses nothing (docs/archive.md).
	seqBurst  = 7500
	seqBursts = 36
	seqLine   = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdef"
)

// deployArchive applies the e2e overlay of config/archive and waits for it.
func deployArchive() error {
	manifests, err := kubectl("kustomize", filepath.Join(root, "test", "e2e", "archive-config"))
	if err != nil {
		return err
	}
	cmd := exec.Command("kubectl", "apply", "--server-side", "--force-conflicts", "-f", "-")
	cmd.Stdin = strings.NewReader(manifests)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apply: %w: %s", err, out)
	}
	if _, err := kubectl("-n", operatorNS, "rollout", "restart", "deploy/"+archiveDeploy); err != nil {
		return err
	}
	_, err = kubectl("-n", operatorNS, "rollout", "status", "deploy/"+archiveDeploy, "--timeout=180s")
	return err
}

// sequenceScript prints the known sequence in paced bursts.
const sequenceScript = `i=0
while [ $i -lt ` + "36" + ` ]; do
  awk -v b=$i 'BEGIN { for (n = b*7500+1; n <= b*7500+7500; n++) printf "%08d ` + seqLine + `\n", n }'
  i=$((i+1))
  sleep 5
done
`

// expectedSequence is what the step prints: its command's trace, then the sequence.
func expectedSequence() []byte {
	var b bytes.Buffer
	b.WriteString("+ sh gen.sh\n")
	for n := 1; n <= seqBurst*seqBursts; n++ {
		fmt.Fprintf(&b, "%08d %s\n", n, seqLine)
	}
	return b.Bytes()
}

// archiveClient reaches the archive's Service from this machine as the holder of
// token, trusting the certificate the archive published.
func archiveClient(t *testing.T, g Gomega, token string) *archiveclient.Client {
	t.Helper()
	ctx := context.Background()
	svc := &corev1.Service{}
	g.Expect(k8s.Get(ctx, client2Key(operatorNS, archiveSvc), svc)).To(Succeed())
	cm := &corev1.ConfigMap{}
	g.Eventually(func() error { return k8s.Get(ctx, client2Key(operatorNS, "flow-ci-archive-ca"), cm) }).
		WithTimeout(time.Minute).Should(Succeed())
	pool := x509.NewCertPool()
	g.Expect(pool.AppendCertsFromPEM([]byte(cm.Data["ca.crt"]))).To(BeTrue())
	hc := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, ServerName: archiveSvc + "." + operatorNS + ".svc", MinVersion: tls.VersionTLS12}}}
	return archiveclient.New("https://"+svc.Spec.ClusterIP, strings.TrimSpace(token), hc)
}

// archiveIP is the archive Service's cluster IP (its certificate names it).
func archiveIP(g Gomega) string {
	svc := &corev1.Service{}
	g.Expect(k8s.Get(context.Background(), client2Key(operatorNS, archiveSvc), svc)).To(Succeed())
	return svc.Spec.ClusterIP
}

// tokenKubeconfig writes a kubeconfig for this cluster that authenticates with token.
func tokenKubeconfig(t *testing.T, token string) string {
	t.Helper()
	cfg, err := ctrl.GetConfig()
	if err != nil {
		t.Fatal(err)
	}
	ca := cfg.CAData
	if len(ca) == 0 && cfg.CAFile != "" {
		if ca, err = os.ReadFile(cfg.CAFile); err != nil {
			t.Fatal(err)
		}
	}
	kc := fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: %s\n    certificate-authority-data: %s\n"+
		"users:\n- name: u\n  user:\n    token: %s\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n",
		cfg.Host, base64.StdEncoding.EncodeToString(ca), strings.TrimSpace(token))
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func client2Key(ns, name string) ctrlclient.ObjectKey {
	return ctrlclient.ObjectKey{Namespace: ns, Name: name}
}

// reader makes a ServiceAccount in ns bound to role and returns a token of it.
func reader(t *testing.T, g Gomega, ns, name string, rules []rbacv1.PolicyRule) string {
	t.Helper()
	ctx := context.Background()
	g.Expect(k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})).To(Succeed())
	g.Expect(k8s.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Rules: rules})).To(Succeed())
	g.Expect(k8s.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}}})).To(Succeed())
	token, err := kubectl("-n", ns, "create", "token", name)
	g.Expect(err).NotTo(HaveOccurred())
	return token
}

var runReader = rbacv1.PolicyRule{APIGroups: []string{civ1alpha1.GroupVersion.Group}, Resources: []string{"pipelineruns"}, Verbs: []string{"get", "list"}}
var logReader = rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}}

// TestArchiveKeepsEveryLine: three runs each print a known 20 MiB sequence while the
// kubelet rotates their logs at 1 MiB and the archive's leading pod is killed at random
// moments (its standby takes over).
// The kubelet's copy has lost its start; after the runs are deleted, the archive
// returns every byte, each line once (same sha256), to a reader with pods/log, and
// refuses a reader without it and a reader of another namespace.
func TestArchiveKeepsEveryLine(t *testing.T) {
	t.Parallel() // it mostly waits for the paced output; the other tests use the time
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	repo, srv := gitServer(t, map[string]string{"gen.sh": sequenceScript, "build/flow-ci.yaml": `name: Loud
steps:
- name: print
  commands:
  - sh gen.sh
`}, gittest.HTTPOptions{})
	names := []string{"loud-1", "loud-2", "loud-3"}
	for _, n := range names {
		createRun(t, ns, n, srv.RepoURL(repo), func(r *civ1alpha1.PipelineRun) {
			r.Spec.ConcurrencyPolicy = civ1alpha1.ConcurrencyAllow
		})
	}
	g.Eventually(func(g Gomega) {
		for _, n := range names {
			g.Expect(getRun(g, ns, n).Status.CurrentStep).To(Equal("print"))
		}
	}).WithTimeout(3 * time.Minute).WithPolling(time.Second).Should(Succeed())
	n, _ := strconv.Atoi(envOr("E2E_ARCHIVE_KILLS", "3"))
	kills := killArchiveAtRandom(t, 150*time.Second, n)
	for _, n := range names {
		g.Expect(waitFinished(t, ns, n, 5*time.Minute).Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded))
	}
	t.Logf("archive pod killed at %v", kills())
	want := expectedSequence()
	kubelet, err := kubectl("-n", ns, "logs", "job/"+getRun(g, ns, names[0]).Status.Steps[0].JobName)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(len(kubelet)).To(BeNumerically("<", len(want)/2), "the kubelet rotated the log away (the test's premise)")
	t.Logf("the kubelet keeps %d of %d bytes", len(kubelet), len(want))

	full := reader(t, g, ns, "full", []rbacv1.PolicyRule{runReader, logReader})
	runsOnly := reader(t, g, ns, "runs-only", []rbacv1.PolicyRule{runReader})
	for _, n := range names {
		run := getRun(g, ns, n)
		g.Expect(k8s.Delete(ctx, run)).To(Succeed())
		g.Eventually(func() bool { return apierrors.IsNotFound(k8s.Get(ctx, client2Key(ns, n), &civ1alpha1.PipelineRun{})) }).
			WithTimeout(2 * time.Minute).Should(BeTrue())
	}
	c := archiveClient(t, g, full)
	stored := map[string][]byte{}
	for _, n := range names {
		rec, err := c.Get(ctx, ns, n)
		g.Expect(err).NotTo(HaveOccurred())
		var step string
		for _, s := range rec.Streams {
			if strings.HasPrefix(s.Name, "step-0-") {
				step = s.Name
			}
			g.Expect(s.Missing).To(BeEmpty(), "%s %s", n, s.Name)
		}
		var got bytes.Buffer
		_, err = c.Log(ctx, ns, n, step, &got)
		g.Expect(err).NotTo(HaveOccurred())
		// The standby read the same stream all along, and stored what the killed
		// leader had not: every line once, in order, and no gap marker.
		lost, cut, err := checkSequence(got.Bytes())
		g.Expect(err).NotTo(HaveOccurred(), "%s: %s", n, firstDifference(got.Bytes(), want))
		g.Expect(lost).To(BeEmpty(), "%s: lines lost", n)
		// A cut is rare (about one rotation in 300 here): more than one in a log is not
		// the kubelet's.
		g.Expect(len(cut)).To(BeNumerically("<=", 1), "%s: lines cut %v", n, cut)
		if len(cut) == 0 {
			g.Expect(sha256.Sum256(got.Bytes())).To(Equal(sha256.Sum256(want)), "%s: every line exactly once", n)
		}
		t.Logf("%s: %d bytes stored, every line once; cut by the kubelet at a rotation: %v", n, got.Len(), cut)
		stored[n] = got.Bytes()
	}
	// The CLI, as that reader with their own kubeconfig: the whole log of a run that is gone.
	cmd := exec.Command(flowciBinary(t), "logs", names[0], "-n", ns, "--archive-url", "https://"+archiveIP(g))
	readerConfig := tokenKubeconfig(t, full)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+readerConfig)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	g.Expect(cmd.Run()).To(Succeed(), stderr.String())
	g.Expect(bytes.Count(stdout.Bytes(), stored[names[0]])).To(Equal(1), "flowci logs prints the whole stored log once (%d bytes; %s)", stdout.Len(), stderr.String())
	t.Logf("flowci logs of the deleted run: %d bytes; %s", stdout.Len(), strings.TrimSpace(stderr.String()))
	archivedLogInBrowser(t, g, readerConfig, ns, names[0], stored[names[0]])

	var sink bytes.Buffer
	_, err = archiveClient(t, g, runsOnly).Log(ctx, ns, names[0], "step-0-xxxxx", &sink)
	g.Expect(err).To(MatchError(ContainSubstring("403")), "no pods/log, no log")
	other := newNamespace(t)
	stranger := reader(t, g, other, "stranger", []rbacv1.PolicyRule{runReader, logReader})
	_, err = archiveClient(t, g, stranger).Get(ctx, ns, names[0])
	g.Expect(err).To(MatchError(ContainSubstring("403")), "another namespace's reader")
}

// killArchiveAtRandom deletes the archive's leading pod n times at random moments
// within d, each time once its standby is ready (every second time its process, with
// SIGKILL), and returns a function that waits for that and says when.
func killArchiveAtRandom(t *testing.T, d time.Duration, n int) func() []time.Duration {
	start := time.Now()
	var at []time.Duration
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			slot := d / time.Duration(n)
			time.Sleep(time.Until(start.Add(slot*time.Duration(i) + rand.N(slot/2))))
			if out, err := kubectl("-n", operatorNS, "wait", "deploy/"+archiveDeploy, "--timeout=90s",
				fmt.Sprintf("--for=jsonpath={.status.availableReplicas}=%d", archiveReplicas)); err != nil {
				t.Errorf("the archive's standby: %v %s", err, out)
			}
			leader, err := archiveLeader()
			if err != nil {
				t.Errorf("the archive's leader: %v", err)
				continue
			}
			at = append(at, time.Since(start).Round(time.Second))
			if i%2 == 1 {
				// SIGKILL, its lease not released: the standby waits for it to expire
				// (15 s) before it takes over, and the pod's container restarts.
				if err := sigkillArchive(leader); err != nil {
					t.Errorf("killing the archive: %v", err)
				}
				continue
			}
			if out, err := kubectl("-n", operatorNS, "delete", "pod", leader, "--wait=false"); err != nil {
				t.Errorf("killing the archive: %v %s", err, out)
			}
		}
	}()
	return func() []time.Duration { wg.Wait(); return at }
}

// sigkillArchive kills the archive process of pod on this machine (the local cluster's
// nodes), found by the host name in its environment.
func sigkillArchive(pod string) error {
	return signalPod(pod, true, syscall.SIGKILL)
}

// archiveProcesses are the archive's processes on this machine.
func archiveProcesses() []int { return flowCIProcesses(true) }

// flowCIProcesses are the processes on this machine of the operator's image: the
// archive's (archive) or the operator's.
func flowCIProcesses(archive bool) []int {
	var found []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(string(raw), "\x00")
		if filepath.Base(args[0]) == "flow-ci" && (len(args) > 1 && args[1] == "archive") == archive {
			found = append(found, pid)
		}
	}
	return found
}

// archiveLeader is the pod that holds the archive's lease (its identity starts with the
// pod's host name, which is the pod's name).
func archiveLeader() (string, error) {
	var err error
	for range 30 {
		var holder string
		holder, err = leaseHolder("flow-ci-archive.flowci.dev")
		if name, _, ok := strings.Cut(holder, "_"); err == nil && ok && name != "" {
			return name, nil
		}
		time.Sleep(time.Second)
	}
	return "", fmt.Errorf("no holder of the archive's lease: %v", err)
}

// firstDifference says where got first differs from want, by want's line.
func firstDifference(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	start := bytes.LastIndexByte(want[:i], '\n') + 1
	end := min(len(want), start+20)
	return fmt.Sprintf("the first difference is at byte %d, in the line that starts %q", i, want[start:end])
}

// checkSequence checks a stored copy of the known sequence: its trace line, then the
// sequence's lines in order, each whole and at most once. It returns the ranges of
// lines missing from it, [first, last], and the lines the kubelet served cut: only
// their end, as a line of its own, where they belong. A rotation can do that to any
// follower (the runtime splits a line being written between the old file and the new,
// and the kubelet moves to the new file without reading the old one's last entry), so
// it is the kubelet's loss, not the archive's; anything else is an error.
func checkSequence(got []byte) (lost [][2]int, cut []int, err error) {
	if !bytes.HasSuffix(got, []byte("\n")) {
		return nil, nil, fmt.Errorf("the log does not end with a newline")
	}
	lines := bytes.Split(got[:len(got)-1], []byte("\n"))
	if string(lines[0]) != "+ sh gen.sh" {
		return nil, nil, fmt.Errorf("first line %q", lines[0])
	}
	next := 1
	for _, l := range lines[1:] {
		n, err := strconv.Atoi(string(l[:min(8, len(l))]))
		if err != nil || len(l) != 9+len(seqLine) || string(l[9:]) != seqLine {
			if whole := fmt.Sprintf("%08d %s", next, seqLine); len(l) > 0 && len(l) < len(whole) && strings.HasSuffix(whole, string(l)) {
				cut = append(cut, next)
				next++
				continue
			}
			return nil, nil, fmt.Errorf("a corrupt line after line %d: %q", next-1, l)
		}
		if n < next {
			return nil, nil, fmt.Errorf("line %d stored again after line %d", n, next-1)
		}
		if n > next {
			lost = append(lost, [2]int{next, n - 1})
		}
		next = n + 1
	}
	if last := seqBurst * seqBursts; next <= last {
		lost = append(lost, [2]int{next, last})
	}
	return lost, cut, nil
}
