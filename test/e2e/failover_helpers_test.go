//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// waitReplicas waits until deploy in the operator's namespace has n available replicas.
func waitReplicas(t testing.TB, g Gomega, deploy string, n int) {
	t.Helper()
	out, err := kubectl("-n", operatorNS, "wait", "deploy/"+deploy, "--timeout=120s",
		fmt.Sprintf("--for=jsonpath={.status.availableReplicas}=%d", n))
	g.Expect(err).NotTo(HaveOccurred(), out)
}

// operatorLeader is the pod that holds the operator's lease (its identity starts with the
// pod's name).
func operatorLeader(t testing.TB) string {
	t.Helper()
	name, _, _ := strings.Cut(operatorHolder(t), "_")
	return name
}

// operatorHolder is the lease's holder identity: the pod's name and the process's own
// UUID, so a container restarted in the same pod is another holder.
func operatorHolder(t testing.TB) string {
	t.Helper()
	holder, err := leaseHolder("flow-ci.flowci.dev")
	if err != nil {
		t.Fatal(err)
	}
	return holder
}

// leaseHolder is the holder identity of a Lease in the operator's namespace.
func leaseHolder(lease string) (string, error) {
	out, err := kubectl("-n", operatorNS, "get", "lease", lease, "-o", "jsonpath={.spec.holderIdentity}")
	return strings.TrimSpace(out), err
}

// signalPod sends sig to the process of pod (on this machine, the local cluster's nodes)
// of the operator's image, the archive's (archive) or the operator's, found by the host
// name in its environment.
func signalPod(pod string, archive bool, sig syscall.Signal) error {
	for _, pid := range flowCIProcesses(archive) {
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if slices.Contains(strings.Split(string(env), "\x00"), "HOSTNAME="+pod) {
			return syscall.Kill(pid, sig)
		}
	}
	return fmt.Errorf("no process of pod %s on this machine", pod)
}

func podIP(t testing.TB, g Gomega, pod string) string {
	p := &corev1.Pod{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: operatorNS, Name: pod}, p)).To(Succeed())
	return p.Status.PodIP
}

func restartCount(t testing.TB, g Gomega, pod string) int32 {
	p := &corev1.Pod{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: operatorNS, Name: pod}, p)).To(Succeed())
	var n int32
	for _, c := range p.Status.ContainerStatuses {
		n += c.RestartCount
	}
	return n
}

// children is what a poll of a namespace's Jobs and pods saw: every UID under each name,
// and when each Job was first seen.
type children struct {
	mu      sync.Mutex
	jobs    map[string][]string // Job name -> UIDs
	pods    map[string][]string // Job name -> pod UIDs
	created []time.Time         // when each new Job was seen, in order
}

// watchChildren lists ns's Jobs and pods every 100 ms until the test ends. A list, not a
// watch: a watch from a resource version the API server's watch cache has not reached
// ends at once with "Too large resource version", and a Job made again or a step run
// again exists for seconds, which a poll does not miss.
func watchChildren(t testing.TB, ns string) *children {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c := &children{jobs: map[string][]string{}, pods: map[string][]string{}}
	go func() {
		for ctx.Err() == nil {
			c.poll(ctx, ns)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return c
}

func (c *children) poll(ctx context.Context, ns string) {
	jobs, pods := &batchv1.JobList{}, &corev1.PodList{}
	if k8s.List(ctx, jobs, client.InNamespace(ns)) != nil || k8s.List(ctx, pods, client.InNamespace(ns)) != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, j := range jobs.Items {
		if uid := string(j.UID); !slices.Contains(c.jobs[j.Name], uid) {
			c.jobs[j.Name] = append(c.jobs[j.Name], uid)
			c.created = append(c.created, time.Now())
		}
	}
	for _, p := range pods.Items {
		name, ok := p.Labels[batchv1.JobNameLabel]
		if uid := string(p.UID); ok && !slices.Contains(c.pods[name], uid) {
			c.pods[name] = append(c.pods[name], uid)
		}
	}
}

// firstJobAfter waits (up to timeout) for a Job made after t, and says when it was seen;
// false when none came.
func (c *children) firstJobAfter(t time.Time, timeout time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		for _, at := range c.created {
			if at.After(t) {
				c.mu.Unlock()
				return at, true
			}
		}
		c.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	return time.Time{}, false
}

// expectOnce fails unless there were n Jobs, each made once, each with one pod: no Job
// made twice, no step run twice.
func (c *children) expectOnce(t *testing.T, n int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.jobs) != n {
		t.Errorf("%d Jobs, want %d: %v", len(c.jobs), n, c.jobs)
	}
	for name, uids := range c.jobs {
		if len(uids) != 1 {
			t.Errorf("Job %s was made %d times", name, len(uids))
		}
		if len(c.pods[name]) != 1 {
			t.Errorf("Job %s ran %d pods", name, len(c.pods[name]))
		}
	}
}

// auditLog is the local cluster's audit log (hack/local-cluster.sh), beside its
// kubeconfig; other clusters have none the test can read, and it skips.
func auditLog(t *testing.T) string {
	kc := os.Getenv("KUBECONFIG")
	p := filepath.Join(filepath.Dir(filepath.Dir(kc)), "logs", "audit.log")
	if _, err := os.Stat(p); kc == "" || err != nil {
		t.Skipf("no audit log of the local cluster at %s", p)
	}
	return p
}

// write is one write of the operator's ServiceAccount, from the audit log.
type write struct {
	at       time.Time
	ip, verb string
	uri      string
}

func (w write) String() string {
	return fmt.Sprintf("%s %s %s from %s", w.at.Format("15:04:05.000000"), w.verb, w.uri, w.ip)
}

// operatorWrites are the operator's writes received since since, from the audit log.
func operatorWrites(t *testing.T, path string, since time.Time) []write {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	const user = "system:serviceaccount:" + operatorNS + ":flow-ci-controller-manager"
	var out []write
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev struct {
			Verb       string    `json:"verb"`
			RequestURI string    `json:"requestURI"`
			SourceIPs  []string  `json:"sourceIPs"`
			Received   time.Time `json:"requestReceivedTimestamp"`
			User       struct {
				Username string `json:"username"`
			} `json:"user"`
		}
		if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.User.Username != user || ev.Received.Before(since) || len(ev.SourceIPs) == 0 {
			continue
		}
		out = append(out, write{at: ev.Received, ip: ev.SourceIPs[0], verb: ev.Verb, uri: ev.RequestURI})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
