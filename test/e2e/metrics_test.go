//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gittest"
)

// TestMetricsScrape scrapes the deployed operator's replicas, as Prometheus would: with
// the token of a ServiceAccount bound to flow-ci-metrics-reader it gets the flow-ci
// series from the leader, and the standby adds no run gauge; without a token, through
// the Service, it is refused.
func TestMetricsScrape(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	repo, srv := gitServer(t, map[string]string{"build/flow-ci.yaml": "name: m\nsteps:\n- name: one\n  commands: [echo one]\n"}, gittest.HTTPOptions{})
	createRun(t, ns, "measured", srv.RepoURL(repo), nil)
	g.Expect(waitFinished(t, ns, "measured", 3*time.Minute).Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded))
	g.Expect(k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "prometheus"}})).To(Succeed())
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "e2e-metrics-" + ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "flow-ci-metrics-reader"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "prometheus"}}}
	g.Expect(k8s.Create(ctx, binding)).To(Succeed())
	t.Cleanup(func() { _ = k8s.Delete(ctx, binding) })
	token, err := kubectl("-n", ns, "create", "token", "prometheus")
	g.Expect(err).NotTo(HaveOccurred())
	svc := &corev1.Service{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: operatorNS, Name: "flow-ci-controller-manager-metrics-service"}, svc)).To(Succeed())
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	scrape := func(host, token string) (int, string, error) {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("https://%s:8443/metrics", host), nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	// Prometheus scrapes every replica behind the Service. The leader reports the runs;
	// the standby, whose cache is as warm, reports no run gauge, so that a sum over the
	// replicas counts each run once.
	var body string
	g.Eventually(func(g Gomega) {
		pods := &corev1.PodList{}
		g.Expect(k8s.List(ctx, pods, client.InNamespace(operatorNS), client.MatchingLabels{
			"app.kubernetes.io/name": "flow-ci", "app.kubernetes.io/component": "controller-manager"})).To(Succeed())
		leader, gauges := operatorLeader(t), 0
		for _, p := range pods.Items {
			code, b, err := scrape(p.Status.PodIP, strings.TrimSpace(token))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(code).To(Equal(http.StatusOK))
			if strings.Contains(b, "flowci_pipelineruns{") {
				gauges++
			}
			if p.Name == leader {
				body = b
			}
		}
		g.Expect(gauges).To(Equal(1), "only the leader reports the run gauge")
		g.Expect(body).To(ContainSubstring(fmt.Sprintf(`flowci_pipelinerun_total{namespace=%q,reason="Succeeded",repository="",result="Succeeded"} 1`, ns)))
	}).WithTimeout(time.Minute).WithPolling(2 * time.Second).Should(Succeed())
	g.Expect(body).To(ContainSubstring(fmt.Sprintf(`flowci_pipelineruns{namespace=%q,phase="Succeeded"} 1`, ns)))
	g.Expect(body).To(ContainSubstring(fmt.Sprintf(`flowci_step_handoff_seconds_count{namespace=%q} 1`, ns)))
	code, _, err := scrape(svc.Spec.ClusterIP, "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(code).To(Equal(http.StatusUnauthorized))
	var lines []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "flowci_") {
			lines = append(lines, l)
		}
	}
	t.Logf("%d flowci samples, e.g.:\n%s", len(lines), strings.Join(lines[:min(len(lines), 8)], "\n"))
}
