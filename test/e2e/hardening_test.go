//go:build e2e

package e2e

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gittest"
)

// seedFile is a one-step pipeline in the original format, on the default step image.
const seedFile = "name: My First Pipeline\nsteps:\n- name: Test\n  commands:\n  - echo seed format works\n"

// TestRunsThatCannotStart: a run whose Secret never appears ends at its timeout, and one
// whose repository is on a denied address ends at once, with its reason.
func TestRunsThatCannotStart(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := newNamespace(t)
	repoA, srv := gitServer(t, map[string]string{"build/flow-ci.yaml": seedFile}, gittest.HTTPOptions{})
	createRun(t, ns, "no-secret", srv.RepoURL(repoA), func(r *civ1alpha1.PipelineRun) {
		r.Spec.GitSecretRef = &civ1alpha1.SecretReference{Name: "never-applied"}
		r.Spec.Timeout = &metav1.Duration{Duration: 30 * time.Second}
	})
	createRun(t, ns, "metadata", "http://169.254.169.254/latest/meta-data.git", nil)
	createRun(t, ns, "loopback", "http://127.0.0.1:8418/repo.git", nil)

	run := waitFinished(t, ns, "no-secret", 2*time.Minute)
	g.Expect(reason(run)).To(Equal(civ1alpha1.ReasonTimedOut))
	g.Expect(run.Status.CompletionTime.Sub(run.Status.StartTime.Time)).To(BeNumerically("<", 90*time.Second))
	for _, name := range []string{"metadata", "loopback"} {
		run := waitFinished(t, ns, name, time.Minute)
		g.Expect(reason(run)).To(Equal(civ1alpha1.ReasonAddressNotAllowed), name)
	}
	g.Expect(jobsIn(g, ns)).To(BeEmpty())
}

// TestHostileGitServers: hostile servers, gzip bombs among them, fail their own runs
// with a reason while the operator keeps its memory, does not restart, and keeps serving
// an ordinary run.
func TestHostileGitServers(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := newNamespace(t)
	on := net.JoinHostPort(gitHost, "0")
	endless := gittest.NewHostileServerOn(t, on, gittest.EndlessRefs, "")
	errorBody := gittest.NewHostileServerOn(t, on, gittest.HugeErrorBody, "")
	gzipRefs := gittest.NewHostileServerOn(t, on, gittest.GzipLongRefs, "")
	gzipEndless := gittest.NewHostileServerOn(t, on, gittest.GzipRefs, "")
	hugeRepo, huge := gitServer(t, map[string]string{"build/flow-ci.yaml": seedFile, "zeros.bin": strings.Repeat("\x00", 300<<20)}, gittest.HTTPOptions{})
	goodRepo, good := gitServer(t, map[string]string{"build/flow-ci.yaml": seedFile}, gittest.HTTPOptions{})
	restarts := operatorRestarts(t)

	createRun(t, ns, "endless", endless.URL, nil)
	createRun(t, ns, "error-body", errorBody.URL, nil)
	createRun(t, ns, "gzip-refs", gzipRefs.URL, nil)
	createRun(t, ns, "gzip-endless", gzipEndless.URL, nil)
	createRun(t, ns, "huge-blob", huge.RepoURL(hugeRepo), nil)
	createRun(t, ns, "ordinary", good.RepoURL(goodRepo), nil)
	want := map[string]string{
		"endless":    civ1alpha1.ReasonSourceTooLarge,
		"error-body": civ1alpha1.ReasonRepositoryNotFound,
		"huge-blob":  civ1alpha1.ReasonSourceTooLarge,
		// 400 KB on the wire, 300 MB gzip-decoded: before decoded bytes were counted,
		// this OOM-killed the operator, which then crash-looped while the run existed.
		"gzip-refs":    civ1alpha1.ReasonSourceTooLarge,
		"gzip-endless": civ1alpha1.ReasonSourceTooLarge,
	}
	for name, r := range want {
		run := waitFinished(t, ns, name, 2*time.Minute)
		g.Expect(reason(run)).To(Equal(r), name)
		g.Expect(toJSON(run.Status)).NotTo(ContainSubstring(gittest.HostileSecret))
	}
	g.Expect(waitFinished(t, ns, "ordinary", 3*time.Minute).Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded))
	g.Expect(operatorRestarts(t)).To(Equal(restarts), "the operator restarted")
	g.Expect(operatorLogs(t)).NotTo(ContainSubstring(gittest.HostileSecret))
}

func operatorRestarts(t *testing.T) int32 {
	t.Helper()
	pods := &corev1.PodList{}
	if err := k8s.List(context.Background(), pods, client.InNamespace(operatorNS), client.MatchingLabels{"app.kubernetes.io/component": "controller-manager"}); err != nil {
		t.Fatal(err)
	}
	var n int32
	for _, p := range pods.Items {
		for _, cs := range p.Status.ContainerStatuses {
			n += cs.RestartCount
		}
	}
	return n
}
