//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gittest"
)

// The build step keeps a Go program's binary (the step wrapper, which every kept step
// has at /flowci-bin) and a note, and tries to keep a symlink to /etc/passwd; the
// second step fails (allowed) and keeps its report because it failed.
const artifactsFile = `name: Artifacts
steps:
- name: build
  artifacts: [bin/, notes.txt, leak]
  commands:
  - mkdir -p bin && cp /flowci-bin/flowci-mask bin/app
  - sha256sum bin/app
  - echo "built at $FLOWCI_COMMIT" > notes.txt
  - ln -s /etc/passwd leak
- name: report
  allowFailure: true
  artifacts: {paths: [report.txt], when: on_failure}
  commands:
  - echo "3 tests failed" > report.txt
  - exit 3
`

// TestArtifactsOutliveTheRun: what the steps keep is downloaded with flowci artifacts
// get after the run, its pods and its volume are gone, byte for byte (the binary is the
// one the image carries); a symlink out of the workspace is refused with a reason in the
// step's log; a reader without the right to read the run's logs gets 403.
func TestArtifactsOutliveTheRun(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	repo, srv := gitServer(t, map[string]string{"build/flow-ci.yaml": artifactsFile}, gittest.HTTPOptions{})
	createRun(t, ns, "artifacts", srv.RepoURL(repo), nil)
	run := waitFinished(t, ns, "artifacts", 5*time.Minute)
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded), toJSON(run.Status))
	logs, err := kubectl("-n", ns, "logs", "job/"+run.Status.Steps[0].JobName)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(logs).To(ContainSubstring("kept artifact bin/app"))
	g.Expect(logs).To(MatchRegexp(`artifact leak not kept: .*symlink`), "a symlink out of the workspace is refused")
	build := run.Status.Steps[0].Artifacts
	g.Expect(build).NotTo(BeNil(), toJSON(run.Status))
	g.Expect(build.Count).To(Equal(int32(2)), "bin/app and notes.txt")
	g.Expect(build.Refused).To(ContainElement(ContainSubstring("leak")))
	g.Expect(run.Status.Artifacts).NotTo(BeNil())
	g.Expect(run.Status.Artifacts.Count).To(Equal(int32(3)), "report.txt too, kept because its step failed")
	g.Expect(run.Status.Steps[1].Message).NotTo(ContainSubstring(civ1alpha1.ArtifactsReportPrefix), "the report is split off the failed step's tail")

	full := reader(t, g, ns, "full", []rbacv1.PolicyRule{runReader, logReader})
	runsOnly := reader(t, g, ns, "runs-only", []rbacv1.PolicyRule{runReader})
	_, err = archiveClient(t, g, runsOnly).Artifacts(ctx, ns, "artifacts", "")
	g.Expect(err).To(MatchError(ContainSubstring("403")), "no pods/log, no artifacts")

	g.Expect(k8s.Delete(ctx, run)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, client2Key(ns, "artifacts"), &civ1alpha1.PipelineRun{}))
	}).WithTimeout(2 * time.Minute).Should(BeTrue())

	readerConfig := tokenKubeconfig(t, full)
	flowci := func(args ...string) string {
		cmd := exec.Command(flowciBinary(t), append(args, "-n", ns, "--archive-url", "https://"+archiveIP(g))...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+readerConfig)
		out, err := cmd.CombinedOutput()
		g.Expect(err).NotTo(HaveOccurred(), string(out))
		return string(out)
	}
	ls := flowci("artifacts", "ls", "artifacts")
	g.Expect(ls).To(ContainSubstring("bin/app"))
	g.Expect(ls).To(ContainSubstring("report.txt"))
	g.Expect(ls).NotTo(ContainSubstring("leak"))
	dir := t.TempDir()
	flowci("artifacts", "get", "artifacts", "-o", dir)
	want, err := os.ReadFile(filepath.Join(root, "bin", "flowci-mask"))
	g.Expect(err).NotTo(HaveOccurred())
	got, err := os.ReadFile(filepath.Join(dir, "bin", "app"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(bytes.Equal(got, want)).To(BeTrue(), "bin/app is the image's flowci-mask byte for byte (%d and %d bytes)", len(got), len(want))
	sum := sha256.Sum256(got)
	g.Expect(logs).To(ContainSubstring(hex.EncodeToString(sum[:])), "the step's own sha256sum of what it built")
	report, err := os.ReadFile(filepath.Join(dir, "report.txt"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(report)).To(Equal("3 tests failed\n"))
	t.Logf("kept and downloaded after the run was deleted:\n%s", ls)
	artifactInBrowser(t, g, readerConfig, ns, "artifacts", "bin/app", want)
}
