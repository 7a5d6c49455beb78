package render

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flow-ci/flow-ci/internal/pipeline"
)

// runStepScript renders a step with commands and runs its container command
// the way the kubelet would: $$ unescaped (no $(VAR) is left to expand once
// everything is escaped), then /bin/sh -c in a scratch directory.
func runStepScript(t *testing.T, commands ...string) (string, error) {
	t.Helper()
	p := &pipeline.Pipeline{Steps: []pipeline.Step{{Name: "s", Commands: commands}}}
	job, err := RenderStepJob(testRun(), p, 0, "", testCfg)
	if err != nil {
		t.Fatal(err)
	}
	argv := job.Spec.Template.Spec.Containers[0].Command
	for i := range argv {
		argv[i] = strings.ReplaceAll(argv[i], "$$", "$")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestStepScriptRuns(t *testing.T) {
	out, err := runStepScript(t,
		"echo hi",
		`echo 'it'\''s "quoted"' 100%s`,
		"for x in a b; do\n  echo \"loop $x\"\ndone\n",
		`echo "pid=$$" | grep -q '^pid=[0-9][0-9]*$' && echo pid ok`,
		"echo continued \\",
		"mkdir sub && cd sub",
		"basename \"$(pwd)\"",
		"false",
		"echo never",
	)
	want := `+ echo hi
hi
+ echo 'it'\''s "quoted"' 100%s
it's "quoted" 100%s
+ for x in a b; do
  echo "loop $x"
done
loop a
loop b
+ echo "pid=$$" | grep -q '^pid=[0-9][0-9]*$' && echo pid ok
pid ok
+ echo continued \
continued
+ mkdir sub && cd sub
+ basename "$(pwd)"
sub
+ false
`
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Errorf("exit: %v, want a non-zero exit status", err)
	}
}

func TestStepScriptSucceeds(t *testing.T) {
	out, err := runStepScript(t, "true", "echo done")
	if err != nil {
		t.Fatalf("script failed: %v\n%s", err, out)
	}
	if want := "+ true\n+ echo done\ndone\n"; out != want {
		t.Errorf("output = %q, want %q", out, want)
	}
}
