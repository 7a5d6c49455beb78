package localrun

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// TestRunWithSecrets: a local run gives steps the Secrets they ask for from what the
// developer passed, as variables and as files under $FLOWCI_SECRETS, masks every value
// in the output and the status tails (also a value printed in two writes, and each line
// of a multi-line one), fails a step that asks for a Secret it was not given, and
// removes the files afterwards.
func TestRunWithSecrets(t *testing.T) {
	const src = `name: s
steps:
- name: use
  dependsOn: []
  secrets:
  - name: deploy
    env: {TOKEN: token}
  - name: tls
    files: [key.pem]
  commands:
  - echo "token=$TOKEN"
  - printf 'split=%s' "$(printf %s "$TOKEN" | cut -c1-5)"; sleep 0.2; printf '%s\n' "$(printf %s "$TOKEN" | cut -c6-)"
  - cat "$FLOWCI_SECRETS/tls/key.pem"
  - echo "$FLOWCI_SECRETS" > secrets-dir.txt
  - exit 3
- name: missing
  dependsOn: []
  secrets: [{name: nope, env: {X: x}}]
  commands: [echo never]
- name: nokey
  dependsOn: []
  secrets: [{name: deploy, env: {X: absent}}]
  commands: [echo never]
`
	const token, keyLine1, keyLine2 = "tok-4f9a2c", "MIIEvQIBADANBgkq", "hkiG9w0BAQEFAASC"
	dir := t.TempDir()
	var out bytes.Buffer
	res, err := Run(context.Background(), parse(t, src), "d", Options{Dir: dir, Home: t.TempDir(), Out: &out, Jobs: 1,
		Secrets: Secrets{"deploy": {"token": token}, "tls": {"key.pem": "-----BEGIN KEY-----\n" + keyLine1 + "\n" + keyLine2 + "\n-----END KEY-----\n"}}})
	if err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, leak := range []string{token, keyLine1, keyLine2, "tok-4"} {
		if strings.Contains(text, leak) {
			t.Errorf("output shows %q:\n%s", leak, text)
		}
	}
	for _, want := range []string{"token=***\n", "split=***\n", "key.pem\"\n***\n***\n***\n***\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	steps := map[string]v1alpha1.StepStatus{}
	for _, s := range res.Run.Status.Steps {
		steps[s.Name] = s
	}
	if s := steps["use"]; s.Phase != v1alpha1.StepFailed || strings.Contains(s.Message, token) || !strings.Contains(s.Message, "***") {
		t.Errorf("use: %s %q: its tail must be masked", s.Phase, s.Message)
	}
	if s := steps["missing"]; s.Reason != v1alpha1.ReasonSecretNotExposed || !strings.Contains(s.Message, `"nope"`) {
		t.Errorf("missing: %s %s %q, want SecretNotExposed naming the Secret", s.Phase, s.Reason, s.Message)
	}
	if s := steps["nokey"]; s.Reason != v1alpha1.ReasonCreateContainerFailed || !strings.Contains(s.Message, `no key "absent"`) {
		t.Errorf("nokey: %s %s %q, want CreateContainerFailed naming the key", s.Phase, s.Reason, s.Message)
	}
	if strings.Contains(text, "never") && !strings.Contains(text, "+ echo never") {
		t.Errorf("a step without its Secret ran:\n%s", text)
	}
	secretsDir, err := os.ReadFile(dir + "/secrets-dir.txt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(strings.TrimSpace(string(secretsDir))); !os.IsNotExist(err) {
		t.Errorf("the Secrets' files at %s outlive the run (%v)", secretsDir, err)
	}
}
