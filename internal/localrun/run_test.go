package localrun

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/pipeline"
	"github.com/flow-ci/flow-ci/internal/render"
)

func parse(t *testing.T, src string) *pipeline.Pipeline {
	t.Helper()
	def, err := pipeline.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return &def.Pipeline
}

// TestRun runs pipelines with the real /bin/sh, as `flowci run` does.
func TestRun(t *testing.T) {
	const seq = "name: seq\nsteps:\n- name: one\n  commands: [echo one > one.txt]\n- name: two\n  commands: [cat one.txt, echo two]\n- name: three\n  commands: [echo three]\n"
	const failing = "name: f\nsteps:\n- name: ok\n  commands: [echo fine]\n- name: bad\n  commands: [echo before, exit 7, echo never]\n- name: after\n  commands: [echo after]\nfinally:\n- name: cleanup\n  commands: [echo cleanup]\n"
	const diamond = "name: d\nsteps:\n- name: a\n  commands: [echo a]\n- name: b\n  dependsOn: [a]\n  commands: [echo b]\n- name: c\n  dependsOn: [a]\n  commands: [echo c]\n- name: d\n  dependsOn: [b, c]\n  commands: [echo d]\n"
	cases := []struct {
		name, src   string
		only, from  string
		jobs        int
		wantCode    int
		wantPhases  map[string]v1alpha1.StepPhase
		wantOut     []string // each must appear, in this order
		wantMissing []string
	}{
		{name: "success", src: seq, wantPhases: map[string]v1alpha1.StepPhase{"one": "Succeeded", "two": "Succeeded", "three": "Succeeded"},
			wantOut: []string{"==> one: started", "+ echo one > one.txt", "==> two: started", "+ cat one.txt", "one\n", "+ echo two", "two\n", "three\n"}},
		{name: "failure stops at the first failing command, exits with its code, runs finally", src: failing, wantCode: 7,
			wantPhases: map[string]v1alpha1.StepPhase{"ok": "Succeeded", "bad": "Failed", "after": "Skipped", "cleanup": "Succeeded"},
			wantOut:    []string{"+ echo before", "before\n", "+ exit 7", "==> bad: Failed", "cleanup\n"}, wantMissing: []string{"never", "+ echo after"}},
		{name: "--step runs one step", src: seq, only: "three",
			wantPhases: map[string]v1alpha1.StepPhase{"one": "Skipped", "two": "Skipped", "three": "Succeeded"},
			wantOut:    []string{"three\n"}, wantMissing: []string{"+ echo one"}},
		{name: "--from takes what the step depends on as done", src: diamond, from: "c",
			wantPhases: map[string]v1alpha1.StepPhase{"a": "Skipped", "b": "Succeeded", "c": "Succeeded", "d": "Succeeded"},
			wantOut:    []string{"+ echo c"}, wantMissing: []string{"+ echo a"}},
		{name: "parallel steps are prefixed", src: diamond, jobs: 4,
			wantPhases: map[string]v1alpha1.StepPhase{"a": "Succeeded", "b": "Succeeded", "c": "Succeeded", "d": "Succeeded"},
			wantOut:    []string{"[a] + echo a", "[a] a\n", "[d] + echo d"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			var out bytes.Buffer
			res, err := Run(context.Background(), parse(t, c.src), "sha256:x", Options{Dir: dir, Home: t.TempDir(), Only: c.only, From: c.from, Jobs: c.jobs, Out: &out, Branch: "main"})
			if err != nil {
				t.Fatal(err)
			}
			if res.ExitCode != c.wantCode {
				t.Errorf("exit code %d, want %d\n%s", res.ExitCode, c.wantCode, out.String())
			}
			got := map[string]v1alpha1.StepPhase{}
			for _, s := range res.Run.Status.Steps {
				got[s.Name] = s.Phase
			}
			if diff := cmp.Diff(c.wantPhases, got); diff != "" {
				t.Errorf("phases (-want +got):\n%s\n%s", diff, out.String())
			}
			text, at := out.String(), 0
			for _, w := range c.wantOut {
				i := strings.Index(text[at:], w)
				if i < 0 {
					t.Fatalf("output lacks %q after byte %d:\n%s", w, at, text)
				}
				at += i + len(w)
			}
			for _, m := range c.wantMissing {
				if strings.Contains(text, m) {
					t.Errorf("output has %q:\n%s", m, text)
				}
			}
			if c.jobs > 1 {
				for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
					if !regexp.MustCompile(`^(==> |\[[a-d]\] )`).MatchString(line) {
						t.Errorf("a line of a parallel run has no step prefix: %q", line)
					}
				}
			}
		})
	}
}

func TestSelectUnknownStep(t *testing.T) {
	_, err := Run(context.Background(), parse(t, "name: x\nsteps:\n- name: a\n  commands: [true]\n"), "", Options{Dir: t.TempDir(), Only: "tset"})
	if err == nil || !strings.Contains(err.Error(), `no such step (steps: "a")`) {
		t.Errorf("err = %v", err)
	}
}

// TestEnvMatchesTheJob: a local step sees exactly the environment the step's Job
// container gets, from the same code, with only HOME moved to this machine (and PATH).
// The Job's values are escaped for the kubelet's $(VAR) expansion; what the container
// sees after it (kubeletExpand, the kubelet's rules) is what the local shell gets
// unescaped. The e2e checks the same against a real container.
func TestEnvMatchesTheJob(t *testing.T) {
	p := parse(t, "name: x\nenv: {GOFLAGS: -mod=readonly, CI: local, PRICE: \"$5 or $(CI)\"}\nsteps:\n- name: build\n"+
		"  env: {CGO_ENABLED: \"0\", PID: \"$$\", TAIL: \"a$\"}\n  commands: [env]\n")
	run := LocalRun(p, "sha256:x", Options{Repo: "https://git.example/app.git", Branch: "main", Commit: strings.Repeat("a", 40)})
	job, err := render.RenderStepJob(run, p, 0, "", render.Config{DefaultStepImage: "busybox:1.37"})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, e := range job.Spec.Template.Spec.Containers[0].Env {
		e.Value = kubeletExpand(e.Value)
		if e.Name == "HOME" {
			e.Value = "/tmp/home"
		}
		want = append(want, e.Name+"="+e.Value)
	}
	want = append(want, "PATH="+os.Getenv("PATH"))
	if diff := cmp.Diff(want, Env(run, p, 0, "/tmp/home", "")); diff != "" {
		t.Errorf("local env differs from what the Job's container sees (-job +local):\n%s", diff)
	}
	for _, kv := range []string{"PRICE=$5 or $(CI)", "PID=$$", "TAIL=a$"} {
		if !slices.Contains(want, kv) {
			t.Errorf("the container would not see %s: %v", kv, want)
		}
	}

	// And the shell sees it: run `env` for real.
	var out bytes.Buffer
	home := filepath.Join(t.TempDir(), "home")
	res, err := Run(context.Background(), p, "sha256:x", Options{Dir: t.TempDir(), Home: home, Out: &out, Repo: "https://git.example/app.git", Branch: "main", Commit: strings.Repeat("a", 40)})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("%v %d\n%s", err, res.ExitCode, out.String())
	}
	for _, kv := range []string{"CI=local", "FLOWCI_BRANCH=main", "FLOWCI_STEP=build", "FLOWCI_RUN=local", "CGO_ENABLED=0", "GOFLAGS=-mod=readonly",
		"HOME=" + home, "PRICE=$5 or $(CI)", "PID=$$", "TAIL=a$"} {
		if !strings.Contains(out.String(), "\n"+kv+"\n") {
			t.Errorf("the step's environment lacks %s:\n%s", kv, out.String())
		}
	}
}

// kubeletExpand applies the kubelet's expansion of a container's env value, as
// k8s.io/kubernetes/third_party/forked/golang/expansion does it, for the values render
// escapes: "$$" is "$", "$(NAME)" is NAME's value (every name here is unknown to the
// kubelet, so it stays literal), and any other "$" is itself.
func kubeletExpand(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// A retried step records its attempts, as a Job's does.
func TestRetriesCountAttempts(t *testing.T) {
	dir := t.TempDir()
	p := parse(t, "name: x\nsteps:\n- name: flaky\n  retries: 2\n  commands: ['test -f done || { touch done; exit 3; }']\n")
	var out bytes.Buffer
	res, err := Run(context.Background(), p, "", Options{Dir: dir, Home: t.TempDir(), Out: &out})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("%v %d\n%s", err, res.ExitCode, out.String())
	}
	s := res.Run.Status.Steps[0]
	if s.Phase != v1alpha1.StepSucceeded || s.Attempts != 2 || s.ExitCode == nil || *s.ExitCode != 0 {
		t.Errorf("step %+v, want Succeeded on its second attempt with exit 0", s)
	}
}
