//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gittest"
)

// The step prints its token in every way a careless script would: as a line, in two
// writes a second apart, on stderr, and a key file of three lines; the next step fails
// with the token in its last line and in the termination message it writes itself (its
// status message); a third asks for a Secret the run does not expose.
const secretsFile = `name: Secrets
steps:
- name: deploy
  dependsOn: []
  secrets:
  - name: deploy-token
    env: {DEPLOY_TOKEN: token}
    files: [key.pem]
  commands:
  - echo "token=$DEPLOY_TOKEN"
  - printf 'split=%s' "$(printf %s "$DEPLOY_TOKEN" | cut -c1-6)"; sleep 1; printf '%s\n' "$(printf %s "$DEPLOY_TOKEN" | cut -c7-)"
  - echo "stderr=$DEPLOY_TOKEN" >&2
  - cat "$FLOWCI_SECRETS/deploy-token/key.pem"
  - test "$(wc -l < "$FLOWCI_SECRETS/deploy-token/key.pem")" -eq 3
- name: fail-with-it
  secrets: [{name: deploy-token, env: {T: token}}]
  commands:
  - echo "failing with $T"
  - echo "written by hand  $T" > /dev/termination-log
  - exit 3
- name: not-exposed
  dependsOn: []
  secrets: [{name: other-token, env: {X: token}}]
  commands: [echo never]
`

// TestStepSecretsNeverShow: a run exposes one Secret (spec.secrets); its values, and
// each line of a multi-line one, appear as *** and nowhere in the clear: not in the
// pod's log (kubectl logs), the run's status, the namespace's events, the archive (after
// the run is deleted), or the web view. A step asking for a Secret the run does not
// expose fails with a reason that names it, and never runs.
func TestStepSecretsNeverShow(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	token, lines := randomHex(12), []string{randomHex(20), randomHex(20), randomHex(20)}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deploy-token"}, StringData: map[string]string{
		"token": token, "key.pem": strings.Join(lines, "\n") + "\n"}}
	g.Expect(k8s.Create(ctx, secret)).To(Succeed())
	other := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "other-token"}, StringData: map[string]string{"token": randomHex(12)}}
	g.Expect(k8s.Create(ctx, other)).To(Succeed())
	leaks := append([]string{token, token[:8], token[6:]}, lines...)

	repo, srv := gitServer(t, map[string]string{"build/flow-ci.yaml": secretsFile}, gittest.HTTPOptions{})
	createRun(t, ns, "secrets", srv.RepoURL(repo), func(r *civ1alpha1.PipelineRun) {
		r.Spec.Secrets = []civ1alpha1.RunSecret{{Name: "deploy-token"}}
	})
	run := waitFinished(t, ns, "secrets", 5*time.Minute)
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseFailed), toJSON(run.Status))
	deploy, failed, notExposed := run.Status.Steps[0], run.Status.Steps[1], run.Status.Steps[2]
	g.Expect(deploy.Phase).To(Equal(civ1alpha1.StepSucceeded), toJSON(run.Status))
	g.Expect(failed.Message).To(ContainSubstring("written by hand  ***"), "the termination message is masked")
	g.Expect(notExposed.Phase).To(Equal(civ1alpha1.StepFailed))
	g.Expect(notExposed.Reason).To(Equal(civ1alpha1.ReasonSecretNotExposed))
	g.Expect(notExposed.Message).To(ContainSubstring(`"other-token"`))
	g.Expect(notExposed.JobName).To(BeEmpty(), "a step without its Secret never gets a Job")

	logs, err := kubectl("-n", ns, "logs", "job/"+deploy.JobName)
	g.Expect(err).NotTo(HaveOccurred())
	for _, want := range []string{"token=***\n", "split=***\n", "stderr=***\n", "***\n***\n***\n"} {
		g.Expect(logs).To(ContainSubstring(want), "kubectl logs shows the mask")
	}
	failedLogs, err := kubectl("-n", ns, "logs", "job/"+failed.JobName)
	g.Expect(err).NotTo(HaveOccurred())
	events, err := kubectl("-n", ns, "get", "events", "-o", "json")
	g.Expect(err).NotTo(HaveOccurred())
	for _, leak := range leaks {
		g.Expect(logs+failedLogs).NotTo(ContainSubstring(leak), "kubectl logs")
		g.Expect(toJSON(run)).NotTo(ContainSubstring(leak), "the run's status")
		g.Expect(events).NotTo(ContainSubstring(leak), "events")
	}

	// The archive, once the run and its pods are gone, and the web view reading it.
	full := reader(t, g, ns, "full", []rbacv1.PolicyRule{runReader, logReader})
	g.Expect(k8s.Delete(ctx, run)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, client2Key(ns, "secrets"), &civ1alpha1.PipelineRun{}))
	}).
		WithTimeout(2 * time.Minute).Should(BeTrue())
	c := archiveClient(t, g, full)
	rec, err := c.Get(ctx, ns, "secrets")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(toJSON(rec)).NotTo(ContainSubstring(token), "the archived record")
	var deployLog []byte
	for _, s := range rec.Streams {
		var got bytes.Buffer
		_, err := c.Log(ctx, ns, "secrets", s.Name, &got)
		g.Expect(err).NotTo(HaveOccurred())
		for _, leak := range leaks {
			g.Expect(got.String()).NotTo(ContainSubstring(leak), "archived log %s", s.Name)
		}
		if strings.HasPrefix(s.Name, "step-0-") {
			deployLog = got.Bytes()
		}
	}
	g.Expect(string(deployLog)).To(ContainSubstring("token=***"))
	archivedLogInBrowser(t, g, tokenKubeconfig(t, full), ns, "secrets", deployLog)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
