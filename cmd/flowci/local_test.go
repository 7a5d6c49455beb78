package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/cli-runtime/pkg/genericclioptions"
)

// flowci runs the CLI in-process in dir and returns its exit code, stdout and stderr.
func flowci(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	t.Chdir(dir)
	var out, errOut bytes.Buffer
	code := run(append([]string{"flowci"}, args...), genericclioptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	return code, out.String(), errOut.String()
}

// workTree makes a git working copy with files committed, and an origin remote.
func workTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	git := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q", "-b", "main")
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git("add", "-A")
	git("commit", "-q", "-m", "init")
	git("remote", "add", "origin", "https://git.example/org/app.git")
	return dir
}

func TestLint(t *testing.T) {
	dir := workTree(t, map[string]string{
		"build/flow-ci.yaml": "name: ok\nsteps:\n- name: a\n  commands: [true]\n",
		"bad.yaml":           "name: x\nsteps:\n- name: a\n  commands: []\n- name: b\n  dependsOn: [tset]\n  commands: [x]\n",
	})
	code, out, _ := flowci(t, dir, "lint")
	if code != 0 || !strings.Contains(out, `build/flow-ci.yaml: pipeline "ok", 1 steps: ok`) {
		t.Errorf("lint of a good file: %d %q", code, out)
	}
	code, _, errOut := flowci(t, dir, "lint", "bad.yaml")
	want := "bad.yaml:4: steps[0].commands: must not be empty\nbad.yaml:6: steps[1].dependsOn[0]: no step \"tset\"\n"
	if code != 1 || errOut != want {
		t.Errorf("lint of a bad file: exit %d, stderr\n%s\nwant exit 1 and\n%s", code, errOut, want)
	}
}

func TestRender(t *testing.T) {
	dir := workTree(t, map[string]string{"build/flow-ci.yaml": "name: r\nsteps:\n- name: test\n  commands: [go test ./...]\n- name: build\n  image: golang:1.26\n  commands: [go build]\n"})
	code, out, errOut := flowci(t, dir, "render")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(out), 4096)
	var images []string
	for {
		job := &batchv1.Job{}
		if err := dec.Decode(job); err != nil {
			break
		}
		if job.Kind != "Job" || len(job.Spec.Template.Spec.Containers) != 1 {
			t.Fatalf("not a step Job: %+v", job)
		}
		images = append(images, job.Spec.Template.Spec.Containers[0].Image)
	}
	if strings.Join(images, ",") != "busybox:1.37,golang:1.26" {
		t.Errorf("rendered the images %v", images)
	}
}

// TestRunClean: --clean runs a clone of HEAD, so an uncommitted file is not there; the
// exit code is the failed step's.
func TestRunClean(t *testing.T) {
	dir := workTree(t, map[string]string{"build/flow-ci.yaml": "name: c\nsteps:\n- name: look\n  commands:\n  - test ! -e scratch.txt || { echo found; exit 9; }\n  - echo clean\n"})
	if err := os.WriteFile(filepath.Join(dir, "scratch.txt"), []byte("uncommitted"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ := flowci(t, dir, "run")
	if code != 9 || !strings.Contains(out, "found") {
		t.Errorf("without --clean the step sees the uncommitted file: exit %d\n%s", code, out)
	}
	code, out, errOut := flowci(t, dir, "run", "--clean")
	if code != 0 || !strings.Contains(out, "clean\n") || !strings.Contains(errOut, "running a clean checkout") {
		t.Errorf("with --clean: exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestRunNoticesImages(t *testing.T) {
	dir := workTree(t, map[string]string{"build/flow-ci.yaml": "name: i\nimage: golang:1.26\nsteps:\n- name: a\n  commands: [echo $FLOWCI_BRANCH]\n"})
	code, out, errOut := flowci(t, dir, "run")
	if code != 0 || !strings.Contains(errOut, "not using the images golang:1.26") || !strings.Contains(out, "main\n") {
		t.Errorf("exit %d\n%s\n%s", code, out, errOut)
	}
}

// Credentials in origin's URL never reach the run's spec (the API server, its audit
// log, status and events).
func TestWithoutCredentials(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		removed  bool
	}{
		{"https://github.com/org/app.git", "https://github.com/org/app.git", false},
		{"https://x-access-token:ghp_SECRET@github.com/org/app.git", "https://github.com/org/app.git", true},
		{"https://ghp_SECRET@github.com/org/app.git", "https://github.com/org/app.git", true},
		{"http://user:pa%40ss@git.local:8080/app.git", "http://git.local:8080/app.git", true},
		{"ssh://git@github.com/org/app.git", "ssh://git@github.com/org/app.git", false},
		{"ssh://git:SECRET@github.com/org/app.git", "ssh://git@github.com/org/app.git", true},
		{"git@github.com:org/app.git", "git@github.com:org/app.git", false},
		{"/srv/git/app.git", "/srv/git/app.git", false},
	} {
		got, removed := withoutCredentials(tc.in)
		if got != tc.want || removed != tc.removed {
			t.Errorf("withoutCredentials(%q) = %q, %v; want %q, %v", tc.in, got, removed, tc.want, tc.removed)
		}
		if strings.Contains(got, "SECRET") {
			t.Errorf("%q kept a credential", got)
		}
	}
}
