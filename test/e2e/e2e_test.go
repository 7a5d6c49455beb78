//go:build e2e

// Package e2e proves flow-ci on a real cluster: the operator deployed from config/ under
// its own ServiceAccount and RBAC, clone and step Jobs that really run on a shared PVC,
// and a git server on this machine that the pods clone from. `make test-e2e` runs it.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	krt "k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
)

const (
	operatorNS     = "flow-ci-system"
	operatorDeploy = "flow-ci-controller-manager"
	// operatorSelector picks the operator's replicas (one leads, one stands by).
	operatorSelector = "app.kubernetes.io/name=flow-ci,app.kubernetes.io/component=controller-manager"
)

var (
	k8s    client.Client
	root   string
	scheme = krt.NewScheme()
	// gitHost is where pods reach this machine: the cluster bridge's gateway.
	gitHost = envOr("E2E_GIT_HOST", "10.88.0.1")
)

func envOr(k, d string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return d
}

func TestMain(m *testing.M) {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(civ1alpha1.AddToScheme(scheme))
	_, file, _, _ := runtime.Caller(0)
	root = filepath.Join(filepath.Dir(file), "..", "..")
	cfg, err := ctrl.GetConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e needs a cluster: set KUBECONFIG (make test-e2e brings up the local one):", err)
		os.Exit(1)
	}
	if k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := deployOperator(); err != nil {
		fmt.Fprintln(os.Stderr, "deploying the operator:", err)
		os.Exit(1)
	}
	// The archive runs through the whole e2e: every run is held, archived and let go.
	if err := deployArchive(); err != nil {
		fmt.Fprintln(os.Stderr, "deploying the archive:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// kubectl runs kubectl with the test's kubeconfig and returns stdout.
func kubectl(args ...string) (string, error) {
	cmd := exec.Command("kubectl", args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), nil
}

// deployOperator applies the e2e overlay of config/default: the CRD, the RBAC from
// config/rbac and the operator Deployment under its own ServiceAccount.
func deployOperator() error {
	manifests, err := kubectl("kustomize", filepath.Join(root, "test", "e2e", "config"))
	if err != nil {
		return err
	}
	cmd := exec.Command("kubectl", "apply", "--server-side", "--force-conflicts", "-f", "-")
	cmd.Stdin = strings.NewReader(strings.ReplaceAll(manifests, "E2E_GIT_HOST", gitHost))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apply: %w: %s", err, out)
	}
	if _, err := kubectl("wait", "--for=condition=Established", "crd/pipelineruns.ci.flowci.dev", "--timeout=60s"); err != nil {
		return err
	}
	// A fresh pod, so a rebuilt image with the same tag is picked up.
	if _, err := kubectl("-n", operatorNS, "rollout", "restart", "deploy/"+operatorDeploy); err != nil {
		return err
	}
	_, err = kubectl("-n", operatorNS, "rollout", "status", "deploy/"+operatorDeploy, "--timeout=180s")
	return err
}

// newNamespace creates a namespace that enforces the restricted Pod Security profile.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-", Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
		"pod-security.kubernetes.io/warn":    "restricted",
	}}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpNamespace(t, ns.Name)
		}
		noPVCLeft(t, ns.Name)
		_ = k8s.Delete(context.Background(), ns)
	})
	return ns.Name
}

func dumpNamespace(t *testing.T, ns string) {
	for _, args := range [][]string{
		{"-n", ns, "get", "fpr,jobs,pods,pvc,cm", "-o", "wide"},
		{"-n", ns, "get", "fpr", "-o", "yaml"},
		{"-n", ns, "get", "events", "--sort-by=.lastTimestamp"},
		{"-n", operatorNS, "logs", "-l", operatorSelector, "--prefix", "--tail=100"},
	} {
		out, err := kubectl(args...)
		t.Logf("kubectl %s:\n%s%v", strings.Join(args, " "), out, errOrEmpty(err))
	}
}

func errOrEmpty(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func createRun(t *testing.T, ns, name, repoURL string, mutate func(*civ1alpha1.PipelineRun)) {
	t.Helper()
	run := &civ1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: civ1alpha1.PipelineRunSpec{RepoURL: repoURL}}
	if mutate != nil {
		mutate(run)
	}
	if err := k8s.Create(context.Background(), run); err != nil {
		t.Fatal(err)
	}
}

func getRun(g Gomega, ns, name string) *civ1alpha1.PipelineRun {
	run := &civ1alpha1.PipelineRun{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, run)).To(Succeed())
	return run
}

// waitFinished waits for a terminal phase with a generous bound for real pods.
func waitFinished(t *testing.T, ns, name string, timeout time.Duration) *civ1alpha1.PipelineRun {
	t.Helper()
	var run *civ1alpha1.PipelineRun
	NewWithT(t).Eventually(func(g Gomega) {
		run = getRun(g, ns, name)
		g.Expect(run.Status.Phase.IsFinished()).To(BeTrue(), "phase %q", run.Status.Phase)
	}).WithTimeout(timeout).WithPolling(time.Second).Should(Succeed())
	return run
}

func jobsIn(g Gomega, ns string) []batchv1.Job {
	list := &batchv1.JobList{}
	g.Expect(k8s.List(context.Background(), list, client.InNamespace(ns))).To(Succeed())
	return list.Items
}

func podsIn(g Gomega, ns string) []corev1.Pod {
	list := &corev1.PodList{}
	g.Expect(k8s.List(context.Background(), list, client.InNamespace(ns))).To(Succeed())
	return list.Items
}

// operatorLogs is everything the operator's replicas logged, for the credential grep.
func operatorLogs(t *testing.T) string {
	out, err := kubectl("-n", operatorNS, "logs", "-l", operatorSelector, "--prefix", "--tail=-1")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// noPVCLeft ends every scenario: its runs are deleted, as a TTL or history limit would,
// and no PersistentVolumeClaim may remain in the namespace.
func noPVCLeft(t *testing.T, ns string) {
	ctx := context.Background()
	if err := k8s.DeleteAllOf(ctx, &civ1alpha1.PipelineRun{}, client.InNamespace(ns)); err != nil {
		t.Errorf("deleting the runs: %v", err)
		return
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		pvcs := &corev1.PersistentVolumeClaimList{}
		err := k8s.List(ctx, pvcs, client.InNamespace(ns))
		if err == nil && len(pvcs.Items) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("PVCs left in %s after its runs were deleted: %d (%v)", ns, len(pvcs.Items), err)
			return
		}
		time.Sleep(time.Second)
	}
}
