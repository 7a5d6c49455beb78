//go:build e2e

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gittest"
)

// flowciBinary builds the CLI once per test binary.
func flowciBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(root, "bin", "flowci-e2e")
	if out, err := exec.Command("go", "build", "-o", bin, filepath.Join(root, "cmd", "flowci")).CombinedOutput(); err != nil {
		t.Fatalf("building flowci: %v\n%s", err, out)
	}
	return bin
}

// cli runs flowci in dir against the test cluster and returns its exit code and output.
func cli(t *testing.T, bin, dir string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = os.Environ()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String()
}

// clone makes a working copy of the served repository, origin pointing at the server.
func clone(t *testing.T, url string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "wc")
	cmd := exec.Command("git", "clone", "--quiet", url, dir)
	cmd.Env = gittest.Env()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	return dir
}

// TestCLI: flowci start -f prints every step's lines in order and exits 0; a failing
// pipeline exits with the step's code; logs after the pods are gone print the status
// tail; cancel stops a run (wait then exits non-zero); rerun builds the same commit.
func TestCLI(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := newNamespace(t)
	bin := flowciBinary(t)
	repo, srv := gitServer(t, map[string]string{"build/flow-ci.yaml": "name: cli\nsteps:\n" +
		"- name: one\n  commands: [echo first line]\n- name: two\n  commands: [echo second line]\n- name: three\n  commands: [echo third line]\n"}, gittest.HTTPOptions{})
	wc := clone(t, srv.RepoURL(repo))

	code, out := cli(t, bin, wc, "-n", ns, "start", "-f")
	g.Expect(code).To(Equal(0), out)
	want := []string{"==> one: started", "+ echo first line", "first line", "==> two: started", "second line", "==> three: started", "third line", "Succeeded"}
	at := 0
	for _, w := range want {
		i := strings.Index(out[at:], w)
		g.Expect(i).To(BeNumerically(">=", 0), "%q after byte %d of:\n%s", w, at, out)
		at += i + len(w)
	}
	first := strings.TrimSuffix(strings.Fields(strings.SplitN(out, " created", 2)[0])[0], "")
	first = strings.TrimPrefix(first, "pipelinerun/")

	// A failing commit: the step's exit code, then its log from status once pods are gone.
	repo.Commit(t, map[string]string{"build/flow-ci.yaml": "name: cli\nsteps:\n- name: fails\n  commands: [echo about to fail, exit 4]\n"})
	gittest.Git(t, wc, "pull", "--quiet")
	code, out = cli(t, bin, wc, "-n", ns, "start", "-f")
	g.Expect(code).To(Equal(4), out)
	failed := strings.TrimPrefix(strings.Fields(out)[0], "pipelinerun/")
	run := getRun(g, ns, failed)
	_, err := kubectl("-n", ns, "delete", "pods", "-l", civ1alpha1.LabelRunUID+"="+string(run.UID), "--wait=true")
	g.Expect(err).NotTo(HaveOccurred())
	code, out = cli(t, bin, wc, "-n", ns, "logs", failed)
	g.Expect(code).To(Equal(0), out)
	g.Expect(out).To(ContainSubstring("fails: Failed (its pods are gone; the log tail kept in the run's status follows)"))
	g.Expect(out).To(ContainSubstring("about to fail"))
	code, out = cli(t, bin, wc, "-n", ns, "describe", failed)
	g.Expect(code).To(Equal(0), out)
	g.Expect(out).To(MatchRegexp(`fails\s+Failed\s+\S+\s+exit 4\s+StepFailed`))

	// Cancel a sleeping run.
	repo.Commit(t, map[string]string{"build/flow-ci.yaml": "name: cli\nsteps:\n- name: sleeps\n  commands: [sleep 300]\n"})
	gittest.Git(t, wc, "pull", "--quiet")
	code, out = cli(t, bin, wc, "-n", ns, "start")
	g.Expect(code).To(Equal(0), out)
	sleeping := strings.TrimSpace(strings.Split(strings.TrimSpace(out), "\n")[len(strings.Split(strings.TrimSpace(out), "\n"))-1])
	waitStep(t, ns, sleeping, "sleeps")
	code, out = cli(t, bin, wc, "-n", ns, "cancel", sleeping)
	g.Expect(code).To(Equal(0), out)
	start := time.Now()
	code, out = cli(t, bin, wc, "-n", ns, "wait", sleeping, "--timeout", "3m")
	g.Expect(code).NotTo(Equal(0), out)
	g.Expect(out).To(ContainSubstring("Cancelled"))
	t.Logf("cancel to Cancelled: %.1fs", time.Since(start).Seconds())

	// Rerun the first run: the same commit, again green.
	code, out = cli(t, bin, wc, "-n", ns, "rerun", first, "-f")
	g.Expect(code).To(Equal(0), out)
	again := strings.TrimPrefix(strings.Fields(out)[0], "pipelinerun/")
	g.Expect(getRun(g, ns, again).Status.Commit).To(Equal(getRun(g, ns, first).Status.Commit))
	code, out = cli(t, bin, wc, "-n", ns, "list")
	g.Expect(code).To(Equal(0), out)
	g.Expect(strings.Count(out, "\n")).To(Equal(5), "a header and four runs:\n%s", out)
}

// TestEnvironmentLocalAndCluster: a value with "$" reaches a step's shell the same on a
// real container (after the kubelet's $(VAR) expansion of the Job's env) as in
// `flowci run` on this machine.
func TestEnvironmentLocalAndCluster(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := newNamespace(t)
	bin := flowciBinary(t)
	file := "name: env\nenv:\n  PRICE: \"$5 or $(CI)\"\nsteps:\n- name: show\n  env:\n    PID: \"$$\"\n    TAIL: \"a$\"\n" +
		"  commands:\n  - printf 'seen PRICE=%s PID=%s TAIL=%s\\n' \"$PRICE\" \"$PID\" \"$TAIL\"\n"
	repo, srv := gitServer(t, map[string]string{"build/flow-ci.yaml": file}, gittest.HTTPOptions{})
	wc := clone(t, srv.RepoURL(repo))
	code, local := cli(t, bin, wc, "run")
	g.Expect(code).To(Equal(0), local)
	createRun(t, ns, "env", srv.RepoURL(repo), nil)
	run := waitFinished(t, ns, "env", 3*time.Minute)
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded))
	remote, err := kubectl("-n", ns, "logs", "job/"+run.Status.Steps[0].JobName)
	g.Expect(err).NotTo(HaveOccurred())
	seen := func(out string) string {
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "seen PRICE=") { // not the "+ printf ..." echo
				return l
			}
		}
		return ""
	}
	g.Expect(seen(remote)).To(Equal("seen PRICE=$5 or $(CI) PID=$$ TAIL=a$"), "%s", remote)
	g.Expect(seen(local)).To(Equal(seen(remote)), "%s", local)
}
