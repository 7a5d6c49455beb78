package localrun

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A local run copies what the steps keep into the artifacts directory, by the cluster's
// rules: only on the end the step names, only files inside the checkout.
func TestLocalArtifacts(t *testing.T) {
	const src = `name: a
steps:
- name: build
  artifacts: [bin/, leak]
  commands: [mkdir -p bin, echo app > bin/app, ln -s /etc/passwd leak]
- name: test
  artifacts: {paths: [report.txt], when: on_failure}
  commands: [echo ok > report.txt]
`
	dir, out := t.TempDir(), t.TempDir()
	var log bytes.Buffer
	res, err := Run(context.Background(), parse(t, src), "sha256:x", Options{Dir: dir, Home: t.TempDir(), Out: &log, Branch: "main", ArtifactsDir: out})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("run: %v, exit %d\n%s", err, res.ExitCode, log.String())
	}
	if b, err := os.ReadFile(filepath.Join(out, "bin", "app")); err != nil || string(b) != "app\n" {
		t.Errorf("bin/app = %q, %v", b, err)
	}
	for _, p := range []string{"leak", "report.txt"} {
		if _, err := os.Lstat(filepath.Join(out, p)); !os.IsNotExist(err) {
			t.Errorf("%s was copied: a symlink out, or a file kept only on failure", p)
		}
	}
	if !strings.Contains(log.String(), "artifact leak not kept: a symlink that leaves the workspace") {
		t.Errorf("the refusal is not in the output:\n%s", log.String())
	}
}
