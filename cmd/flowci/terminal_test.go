package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// runTTY runs the CLI in-process with its output on a pseudo-terminal, or on a pipe.
func runTTY(t *testing.T, tty bool, args ...string) (int, string) {
	t.Helper()
	var out *os.File
	var read io.Reader
	if tty {
		ptmx, tt, err := pty.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = ptmx.Close() }()
		out, read = tt, ptmx
	} else {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = r.Close() }()
		out, read = w, r
	}
	var buf bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _, _ = io.Copy(&buf, read) }()
	code := run(append([]string{"flowci", "--kubeconfig", env.Kubeconfig(t)}, args...),
		genericclioptions.IOStreams{In: strings.NewReader(""), Out: out, ErrOut: io.Discard})
	_ = out.Close()
	wg.Wait()
	return code, buf.String()
}

// finishLater plays the operator: the run runs, then fails at step "test" with exit 3,
// its pods already gone (envtest has no kubelet), so the CLI shows the status tails.
func finishLater(t *testing.T, ns, name string, after time.Duration) {
	t.Helper()
	ctx := context.Background()
	exit := int32(3)
	now := metav1.Now()
	for i := 0; name == "" && i < 100; i++ { // start -f: the run the CLI creates
		list := &v1alpha1.PipelineRunList{}
		if err := env.Client.List(ctx, list, client.InNamespace(ns)); err == nil && len(list.Items) > 0 {
			name = list.Items[0].Name
		}
		time.Sleep(100 * time.Millisecond)
	}
	set := func(mutate func(*v1alpha1.PipelineRun)) {
		for i := 0; i < 50; i++ {
			run := &v1alpha1.PipelineRun{}
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, run); err == nil {
				mutate(run)
				if env.Client.Status().Update(ctx, run) == nil {
					return
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("could not update run %s", name)
	}
	set(func(r *v1alpha1.PipelineRun) {
		r.Status.Phase, r.Status.Progress, r.Status.CurrentStep, r.Status.StartTime = v1alpha1.PhaseRunning, "1/2", "test", &now
		r.Status.Steps = []v1alpha1.StepStatus{
			{Name: "lint", Phase: v1alpha1.StepSucceeded, Message: ""},
			{Name: "test", Index: 1, DependsOn: []string{"lint"}, Phase: v1alpha1.StepRunning},
		}
	})
	time.Sleep(after)
	set(func(r *v1alpha1.PipelineRun) {
		r.Status.Phase, r.Status.Progress, r.Status.CurrentStep = v1alpha1.PhaseFailed, "2/2", ""
		r.Status.Steps[1].Phase, r.Status.Steps[1].ExitCode, r.Status.Steps[1].Reason = v1alpha1.StepFailed, &exit, v1alpha1.ReasonStepFailed
		r.Status.Steps[1].Message = "+ go test ./...\n--- FAIL: TestX\n"
		r.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionSucceeded, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonStepFailed,
			Message: `step "test" failed with exit code 3`, LastTransitionTime: now}}
	})
}

// TestFollowOnTerminal: logs -f, start -f and wait colour their output on a terminal
// (start -f and wait with a live progress line), print plain lines when piped, and exit
// with the failed step's code.
func TestFollowOnTerminal(t *testing.T) {
	wc := workTree(t, map[string]string{"build/flow-ci.yaml": "name: x\nsteps:\n- name: a\n  commands: [true]\n"})
	for _, tc := range []struct {
		name     string
		tty      bool
		cmd      string
		progress bool
	}{
		{"logs-tty", true, "logs", false}, {"logs-pipe", false, "logs", false},
		{"start-tty", true, "start", true}, {"start-pipe", false, "start", false},
		{"wait-tty", true, "wait", true}, {"wait-pipe", false, "wait", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := env.NewNamespace(t)
			name := tc.name
			if tc.cmd == "start" {
				name = ""
				t.Chdir(wc)
			} else {
				run := &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: tc.name},
					Spec: v1alpha1.PipelineRunSpec{RepoURL: "https://git.example/org/app.git"}}
				if err := env.Client.Create(context.Background(), run); err != nil {
					t.Fatal(err)
				}
			}
			go finishLater(t, ns, name, 2500*time.Millisecond)
			args := map[string][]string{"logs": {"logs", "-f", tc.name}, "start": {"start", "-f"}, "wait": {"wait", tc.name}}[tc.cmd]
			code, out := runTTY(t, tc.tty, append([]string{"-n", ns}, args...)...)
			if code != 3 {
				t.Errorf("exit code %d, want the failed step's 3\n%q", code, out)
			}
			escapes := strings.Contains(out, "\x1b[")
			if escapes != tc.tty {
				t.Errorf("escape codes in the output: %v, want %v\n%q", escapes, tc.tty, out)
			}
			plain := stripANSI(out)
			if !strings.Contains(plain, "Failed") {
				t.Errorf("the outcome is not shown:\n%q", out)
			}
			if tc.cmd != "wait" && !strings.Contains(plain, "test: Failed (its pods are gone; the log tail kept in the run's status follows)\n+ go test ./...\n--- FAIL: TestX") {
				t.Errorf("the status tail is not shown in order:\n%s", plain)
			}
			if tc.progress != (strings.Contains(out, clearLine) && strings.Contains(out, "Running"+ansiReset+" 1/2 test")) {
				t.Errorf("live progress line: want %v\n%q", tc.progress, out)
			}
			if tc.tty {
				if !strings.Contains(out, ansiRed+"Failed"+ansiReset) {
					t.Errorf("Failed is not red on the terminal:\n%q", out)
				}
			}
		})
	}
}

// stripANSI renders the output as a terminal shows it, without colours: "\r\x1b[K"
// clears the line being written (the progress line), and only lines that end remain.
func stripANSI(s string) string {
	var done, line strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], clearLine):
			line.Reset()
			i += len(clearLine) - 1
		case s[i] == '\x1b':
			for i < len(s) && !(s[i] >= 'A' && s[i] <= 'Z' || s[i] >= 'a' && s[i] <= 'z') {
				i++
			}
		case s[i] == '\r':
		case s[i] == '\n':
			done.WriteString(line.String() + "\n")
			line.Reset()
		default:
			line.WriteByte(s[i])
		}
	}
	return done.String() + line.String()
}
