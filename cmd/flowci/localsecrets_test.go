package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunSecretsFromThisMachine: flowci run takes Secrets from a file and from
// environment variables, masks them, and refuses a malformed flag or an unset variable
// without running anything.
func TestRunSecretsFromThisMachine(t *testing.T) {
	dir := workTree(t, map[string]string{"build/flow-ci.yaml": `name: s
steps:
- name: deploy
  secrets:
  - name: deploy-token
    env: {TOKEN: token}
  - name: registry
    env: {PASSWORD: password}
  commands: [echo "t=$TOKEN p=$PASSWORD"]
`})
	file := filepath.Join(t.TempDir(), "secrets.yaml")
	if err := os.WriteFile(file, []byte("deploy-token:\n  token: from-the-file-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REGISTRY_PASSWORD", "from-the-env-2")
	code, out, errOut := flowci(t, dir, "run", "--secrets-file", file, "--secret-env", "registry/password=REGISTRY_PASSWORD")
	if code != 0 || !strings.Contains(out, "t=*** p=***\n") || strings.Contains(out, "from-the") {
		t.Errorf("exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = flowci(t, dir, "run", "--secrets-file", file)
	if code == 0 || !strings.Contains(out, "Failed") {
		t.Errorf("a step without its Secret: exit %d\n%s", code, out)
	}
	for _, bad := range [][]string{
		{"--secret-env", "registry=REGISTRY_PASSWORD"},
		{"--secret-env", "registry/password=NOT_SET_ANYWHERE"},
		{"--secrets-file", filepath.Join(dir, "build/flow-ci.yaml")},
	} {
		code, out, errOut := flowci(t, dir, append([]string{"run"}, bad...)...)
		if code == 0 || strings.Contains(out, "==> deploy: started") || errOut == "" {
			t.Errorf("%q: exit %d, want an error before any step\n%s\n%s", bad, code, out, errOut)
		}
	}
}
