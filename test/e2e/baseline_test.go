//go:build e2e

package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gittest"
)

// TestHandDrivenBaseline compares three trivial steps run by flow-ci with the same three
// steps run by hand: `kubectl create` of a Job on a shared PVC, then `kubectl wait`, in
// a loop. It asserts only that both finish; the times go to the test log for the notes.
func TestHandDrivenBaseline(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)

	repo, srv := gitServer(t, map[string]string{"build/flow-ci.yaml": "name: Three\nsteps:\n" +
		"- name: one\n  commands:\n  - echo one > one.txt\n" +
		"- name: two\n  commands:\n  - cat one.txt\n" +
		"- name: three\n  commands:\n  - echo three\n"}, gittest.HTTPOptions{})
	start := time.Now()
	createRun(t, ns, "three", srv.RepoURL(repo), nil)
	run := waitFinished(t, ns, "three", 3*time.Minute)
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded))
	flowci := time.Since(start)
	logHandoffs(t, ns, run)

	pvc := `{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"hand"},
"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}}`
	apply := exec.Command("kubectl", "-n", ns, "create", "-f", "-")
	apply.Stdin = strings.NewReader(pvc)
	out, err := apply.CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), string(out))
	start = time.Now()
	for i, cmd := range []string{"echo one > /w/one.txt", "cat /w/one.txt", "echo three"} {
		job := fmt.Sprintf(`{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"hand-%d"},"spec":{"backoffLimit":0,
"template":{"spec":{"restartPolicy":"Never","automountServiceAccountToken":false,
"securityContext":{"runAsNonRoot":true,"runAsUser":65532,"runAsGroup":65532,"fsGroup":65532,"seccompProfile":{"type":"RuntimeDefault"}},
"volumes":[{"name":"w","persistentVolumeClaim":{"claimName":"hand"}}],
"containers":[{"name":"s","image":"localhost/busybox:local","imagePullPolicy":"IfNotPresent","command":["/bin/sh","-c",%q],
"volumeMounts":[{"name":"w","mountPath":"/w"}],
"securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}}}]}}}}`, i, cmd)
		create := exec.Command("kubectl", "-n", ns, "create", "-f", "-")
		create.Stdin = strings.NewReader(job)
		out, err := create.CombinedOutput()
		g.Expect(err).NotTo(HaveOccurred(), string(out))
		_, err = kubectl("-n", ns, "wait", "--for=condition=Complete", fmt.Sprintf("job/hand-%d", i), "--timeout=120s")
		g.Expect(err).NotTo(HaveOccurred())
	}
	hand := time.Since(start)
	// The hand-driven Jobs and volume are nobody's children: remove them by hand.
	_, err = kubectl("-n", ns, "delete", "job", "hand-0", "hand-1", "hand-2", "--cascade=foreground")
	g.Expect(err).NotTo(HaveOccurred())
	_, err = kubectl("-n", ns, "delete", "pvc", "hand")
	g.Expect(err).NotTo(HaveOccurred())
	t.Logf("three trivial steps: flow-ci run (resolve, read, PVC, clone, 3 Jobs) %.1fs; hand-driven kubectl create+wait (PVC, 3 Jobs, no clone) %.1fs",
		flowci.Seconds(), hand.Seconds())
}
