//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gittest"
)

// tenant makes a ServiceAccount of ns bound there to the named ClusterRoles, and
// returns the --as value that acts as it.
func tenant(t *testing.T, ns, name string, roles ...string) string {
	t.Helper()
	ctx := context.Background()
	if err := k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}); err != nil {
		t.Fatal(err)
	}
	for _, role := range roles {
		b := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-" + role},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}}}
		if err := k8s.Create(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	return "--as=system:serviceaccount:" + ns + ":" + name
}

// kubectlApply applies manifest with kubectl and extra flags (--as).
func kubectlApply(manifest string, flags ...string) (string, error) {
	cmd := exec.Command("kubectl", append([]string{"apply", "-f", "-"}, flags...)...)
	cmd.Stdin = strings.NewReader(manifest)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestTenantsCannotBorrowATrigger: as the shipped roles and policies stand on a real
// cluster, a run creator cannot make a run claim a trigger that reports (its forge
// token would post for their repository), a trigger editor without the Secret cannot
// change what a trigger with that Secret builds (though they may poke it), and a
// schedule every second is refused at apply.
func TestTenantsCannotBorrowATrigger(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	runsOnly := tenant(t, ns, "runs-only", "flow-ci-pipelinerun-editor-role")
	triggerEditor := tenant(t, ns, "trigger-editor", "flow-ci-pipelinetrigger-editor-role")
	g.Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "forge"}, StringData: map[string]string{"token": "t"}})).To(Succeed())
	tr := &civ1alpha1.PipelineTrigger{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "reports"}, Spec: civ1alpha1.PipelineTriggerSpec{
		RepoURL: "https://git.example/org/app.git", Branches: []string{"main"}, Suspend: true,
		Report: &civ1alpha1.CommitStatusReport{Provider: "gitea", URL: "https://forge.example", SecretRef: civ1alpha1.SecretReference{Name: "forge"}},
	}}
	g.Expect(k8s.Create(ctx, tr)).To(Succeed())

	forged := fmt.Sprintf(`apiVersion: ci.flowci.dev/v1alpha1
kind: PipelineRun
metadata:
  name: forged
  namespace: %s
  ownerReferences:
  - {apiVersion: ci.flowci.dev/v1alpha1, kind: PipelineTrigger, name: reports, uid: %s, controller: true}
spec:
  repoURL: https://git.example/org/other.git
  revision: %s
`, ns, tr.UID, strings.Repeat("a", 40))
	out, err := kubectlApply(forged, runsOnly)
	g.Expect(err).To(HaveOccurred(), out)
	g.Expect(out).To(ContainSubstring("only the operator may make a PipelineRun claim a PipelineTrigger"))

	_, err = kubectl("-n", ns, "patch", "fpt", "reports", "--type=merge", "-p", `{"spec":{"branches":["attacker"]}}`, triggerEditor)
	g.Expect(err).To(MatchError(ContainSubstring(`you may not get Secret "forge"`)))
	_, err = kubectl("-n", ns, "annotate", "fpt", "reports", civ1alpha1.AnnotationRequestedAt+"=now", triggerEditor)
	g.Expect(err).NotTo(HaveOccurred(), "a poke needs no access to the Secret")

	every := fmt.Sprintf("apiVersion: ci.flowci.dev/v1alpha1\nkind: PipelineTrigger\nmetadata: {name: often, namespace: %s}\n"+
		"spec:\n  repoURL: https://git.example/org/app.git\n  schedules:\n  - {name: often, cron: \"@every 1s\"}\n", ns)
	out, err = kubectlApply(every)
	g.Expect(err).To(HaveOccurred(), out)
	g.Expect(out).To(ContainSubstring("an @every schedule is a duration of whole minutes"))
}

// TestStarvingTenantOnTheCluster: 40 runs of one namespace at a server that accepts and
// never answers do not delay another namespace's run: its clone Job exists within 15 s.
func TestStarvingTenantOnTheCluster(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := context.Background()
	greedy, other := newNamespace(t), newNamespace(t)
	silent := "http://" + gittest.NewSilentServerOn(t, net.JoinHostPort(gitHost, "0")) + "/repo.git"
	repo, srv := gitServer(t, map[string]string{"build/flow-ci.yaml": seedFile}, gittest.HTTPOptions{})
	for i := range 40 {
		createRun(t, greedy, fmt.Sprintf("starve-%d", i), silent, func(r *civ1alpha1.PipelineRun) { r.Spec.Timeout = &metav1.Duration{Duration: 3 * time.Minute} })
	}
	time.Sleep(5 * time.Second) // the starving runs' fetches hold their namespace's share
	createRun(t, other, "fine", srv.RepoURL(repo), nil)
	run := getRun(g, other, "fine")
	var clone *batchv1.Job
	g.Eventually(func(g Gomega) {
		list := &batchv1.JobList{}
		g.Expect(k8s.List(ctx, list, client.InNamespace(other))).To(Succeed())
		g.Expect(list.Items).NotTo(BeEmpty())
		clone = &list.Items[0]
	}).WithTimeout(2 * time.Minute).Should(Succeed())
	waited := clone.CreationTimestamp.Sub(run.CreationTimestamp.Time)
	t.Logf("another tenant's clone Job was created %s after its run, beside 40 starving runs", waited)
	g.Expect(waited).To(BeNumerically("<=", 15*time.Second))
	g.Expect(waitFinished(t, other, "fine", 3*time.Minute).Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded))
	_ = k8s.DeleteAllOf(ctx, &civ1alpha1.PipelineRun{}, client.InNamespace(greedy))
}
