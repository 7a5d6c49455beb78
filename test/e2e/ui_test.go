//go:build e2e

package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gittest"
)

// runUI starts `flowci ui` on a free loopback port with the test's environment plus env
// and the extra arguments, and returns its base URL once it answers, and its stop.
func runUI(t *testing.T, g Gomega, env []string, args ...string) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	addr := ln.Addr().String()
	_ = ln.Close()
	ui := exec.Command(flowciBinary(t), append([]string{"ui", "--listen", addr}, args...)...)
	ui.Env = append(os.Environ(), env...)
	ui.Stdout, ui.Stderr = os.Stdout, os.Stderr
	g.Expect(ui.Start()).To(Succeed())
	base := "http://" + addr
	g.Eventually(func() error { _, err := http.Get(base + "/runs"); return err }).WithTimeout(10 * time.Second).Should(Succeed())
	return base, func() { _ = ui.Process.Kill(); _ = ui.Wait() }
}

// browser starts headless Chromium (Debian's chromium) for the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("the web view test needs Debian's chromium (.ci/run installs it): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1280, 900))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	return ctx
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join(root, "bin", "ui")
	_ = os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestWebView drives the web view in a real browser: the runs list shows a new run; its
// page shows the steps and a log line that appears while the step runs; once the run
// failed and its pods were deleted, the failed step shows the tail kept in status,
// labelled so; bad URLs get 404 and 400 pages. Screenshots go to bin/ui.
func TestWebView(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := newNamespace(t)
	base, stop := runUI(t, g, nil)
	t.Cleanup(stop)

	repo, srv := gitServer(t, map[string]string{"build/flow-ci.yaml": "name: web\nsteps:\n" +
		"- name: slow\n  commands: [echo first line, sleep 10, echo second line]\n" +
		"- name: fails\n  commands: [echo about to fail, exit 5]\n"}, gittest.HTTPOptions{})
	createRun(t, ns, "viewed", srv.RepoURL(repo), nil)

	ctx := browser(t)
	tctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	var text string
	var err error
	g.Expect(chromedp.Do(tctx, chromedp.Navigate(base+"/runs?namespace="+ns),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/runs/`+ns+`/viewed"]`)))).To(Succeed())
	screenshot(t, tctx, "runs.png")

	// The live log: "first line" shows while the step still runs (it sleeps 10s after).
	g.Expect(chromedp.Do(tctx, chromedp.Navigate(base+"/runs/"+ns+"/viewed"))).To(Succeed())
	g.Eventually(func(g Gomega) {
		text, err = chromedp.Run(tctx, chromedp.Text(chromedp.CSS("#step-0")))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(text).To(ContainSubstring("first line"))
	}).WithTimeout(3 * time.Minute).WithPolling(500 * time.Millisecond).Should(Succeed())
	run := getRun(g, ns, "viewed")
	g.Expect(run.Status.Steps[0].Phase).To(Equal(civ1alpha1.StepRunning), "the line appeared while the step ran")
	g.Expect(text).NotTo(ContainSubstring("second line"))
	screenshot(t, tctx, "run-live.png")
	g.Eventually(func(g Gomega) {
		text, err = chromedp.Run(tctx, chromedp.Text(chromedp.CSS("#step-0")))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(text).To(ContainSubstring("second line"))
	}).WithTimeout(time.Minute).WithPolling(500 * time.Millisecond).Should(Succeed())

	// After the run failed and its pods are gone: the status tail, labelled.
	run = waitFinished(t, ns, "viewed", 3*time.Minute)
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseFailed))
	_, err = kubectl("-n", ns, "delete", "pods", "-l", civ1alpha1.LabelRunUID+"="+string(run.UID), "--wait=true")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(chromedp.Do(tctx, chromedp.Navigate(base+"/runs/"+ns+"/viewed"))).To(Succeed())
	g.Eventually(func(g Gomega) {
		text, err = chromedp.Run(tctx, chromedp.Text(chromedp.CSS("#step-1")))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(text).To(ContainSubstring("its pods are gone: the log tail kept in the run's status"))
		g.Expect(text).To(ContainSubstring("about to fail"))
		g.Expect(text).To(ContainSubstring("exit 5"))
	}).WithTimeout(30 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
	screenshot(t, tctx, "run.png")

	for url, want := range map[string]string{
		"/runs/" + ns + "/no-such-run": "Not found", "/runs?phase=Bogus": "Bad request", "/runs/" + ns + "/viewed/steps/x/log": "Bad request",
	} {
		resp, err := http.Get(base + url)
		g.Expect(err).NotTo(HaveOccurred())
		_ = resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(map[string]int{"Not found": 404, "Bad request": 400}[want]), url)
		g.Expect(chromedp.Do(tctx, chromedp.Navigate(base+url))).To(Succeed())
		text, err = chromedp.Run(tctx, chromedp.Text(chromedp.CSS("h1")))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(text).To(Equal(want), url)
	}
	screenshot(t, tctx, "not-found.png")
	t.Logf("screenshots in %s", filepath.Join(root, "bin", "ui"))
}

// TestWebViewInCluster deploys config/ui: the same server as its own read-only
// Deployment and ServiceAccount, which may not read Secrets or write anything, and
// serves each reader only what Kubernetes lets them read: a pod of another namespace
// without a token gets 401; a tenant's token gets their own namespace's runs, and 403
// for another's.
func TestWebViewInCluster(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := context.Background()
	manifests, err := kubectl("kustomize", filepath.Join(root, "test", "e2e", "ui-config"))
	g.Expect(err).NotTo(HaveOccurred())
	apply := exec.Command("kubectl", "apply", "--server-side", "--force-conflicts", "-f", "-")
	apply.Stdin = strings.NewReader(manifests)
	out, err := apply.CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), string(out))
	t.Cleanup(func() {
		del := exec.Command("kubectl", "delete", "--ignore-not-found", "-f", "-")
		del.Stdin = strings.NewReader(manifests)
		_ = del.Run()
	})
	_, err = kubectl("-n", operatorNS, "rollout", "restart", "deploy/flow-ci-ui")
	g.Expect(err).NotTo(HaveOccurred())
	out2, err := kubectl("-n", operatorNS, "rollout", "status", "deploy/flow-ci-ui", "--timeout=180s")
	g.Expect(err).NotTo(HaveOccurred(), out2)
	sa := "system:serviceaccount:" + operatorNS + ":flow-ci-ui"
	for _, verb := range [][]string{{"get", "secrets"}, {"get", "configmaps"}, {"create", "pipelineruns.ci.flowci.dev"}, {"patch", "pipelineruns.ci.flowci.dev"}, {"delete", "pods"}} {
		answer, _ := kubectl("auth", "can-i", verb[0], verb[1], "--as="+sa, "-A")
		g.Expect(strings.TrimSpace(answer)).To(Equal("no"), "%s %s", verb[0], verb[1])
	}
	answer, _ := kubectl("auth", "can-i", "get", "pods", "--subresource=log", "--as="+sa, "-A")
	g.Expect(strings.TrimSpace(answer)).To(Equal("yes"))

	// Two tenants, each with a run; the first has a reader bound to view its runs.
	mine, theirs := newNamespace(t), newNamespace(t)
	for _, ns := range []string{mine, theirs} {
		run := &civ1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shown-" + ns},
			Spec: civ1alpha1.PipelineRunSpec{RepoURL: "https://git.example/org/app.git", Cancel: true}}
		g.Expect(k8s.Create(ctx, run)).To(Succeed())
	}
	g.Expect(k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: mine, Name: "viewer"}})).To(Succeed())
	g.Expect(k8s.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: mine, Name: "viewer"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "flow-ci-pipelinerun-viewer-role"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: mine, Name: "viewer"}}})).To(Succeed())
	token, err := kubectl("-n", mine, "create", "token", "viewer")
	g.Expect(err).NotTo(HaveOccurred())
	svc := &corev1.Service{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: operatorNS, Name: "flow-ci-ui"}, svc)).To(Succeed())
	base := "http://" + svc.Spec.ClusterIP
	fetch := func(path, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(token))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	g.Eventually(func() int { code, _ := fetch("/runs", ""); return code }).WithTimeout(time.Minute).Should(Equal(http.StatusUnauthorized))
	code, page := fetch("/runs?namespace="+mine, token)
	g.Expect(code).To(Equal(200), page)
	g.Expect(page).To(ContainSubstring("shown-" + mine))
	code, page = fetch("/runs?namespace="+theirs, token)
	g.Expect(code).To(Equal(http.StatusForbidden), page)
	g.Expect(page).NotTo(ContainSubstring("shown-" + theirs))
	code, page = fetch("/runs", token)
	g.Expect(code).To(Equal(200))
	g.Expect(page).To(ContainSubstring("shown-" + mine))
	g.Expect(page).NotTo(ContainSubstring("shown-"+theirs), "every namespace means the reader's")

	// A pod of the other tenant, with no token, reads nothing.
	probe := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: theirs, Name: "probe"}, Spec: corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever, AutomountServiceAccountToken: new(false), DNSPolicy: corev1.DNSDefault,
		SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: new(true), RunAsUser: new(int64(65532)),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
		Containers: []corev1.Container{{Name: "wget", Image: "localhost/busybox:local", ImagePullPolicy: corev1.PullIfNotPresent,
			Command:         []string{"/bin/sh", "-c", "wget -S -O /dev/null " + base + "/runs?namespace=" + mine + " 2>&1; true"},
			SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: new(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}}},
	}}
	g.Expect(k8s.Create(ctx, probe)).To(Succeed())
	g.Eventually(func(g Gomega) {
		p := &corev1.Pod{}
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(probe), p)).To(Succeed())
		g.Expect(p.Status.Phase).To(Equal(corev1.PodSucceeded))
	}).WithTimeout(2 * time.Minute).Should(Succeed())
	logs, err := kubectl("-n", theirs, "logs", "probe")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(logs).To(ContainSubstring("401 Unauthorized"))
}
