package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flow-ci/flow-ci/internal/mask"
)

// build compiles flowci-mask into a temporary directory: the tests run the real binary,
// since it forwards signals and reaps children as a process of its own.
func build(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go is not on PATH")
	}
	bin := filepath.Join(t.TempDir(), "flowci-mask")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// secretVolume lays out dir the way the kubelet fills a Secret volume, and adds a link
// to a file outside it, which must not be read.
func secretVolume(t *testing.T, dir string) {
	writeFile(t, filepath.Join(dir, "..2024_01_01_00_00_00.1", "token"), "volume-secret\n")
	writeFile(t, filepath.Join(dir, "..2023_12_31_00_00_00.1", "token"), "old-secret\n")
	outside := filepath.Join(t.TempDir(), "outside")
	writeFile(t, outside, "outside-value\n")
	for link, target := range map[string]string{
		"..data": "..2024_01_01_00_00_00.1",
		"token":  "..data/token",
		"escape": outside,
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

func TestRun(t *testing.T) {
	bin := build(t)
	for _, tc := range []struct {
		name     string
		env      []string
		files    map[string]string
		volume   bool
		args     []string
		wantOut  string
		wantErr  string
		wantCode int
	}{{
		name:  "env and files masked, exit code kept",
		env:   []string{"FLOWCI_MASK_ENV=TOK", "TOK=token-value"},
		files: map[string]string{"s/lines": "secret-line-1\nsecret-line-2\n"},
		args: []string{"/bin/sh", "-c",
			`printf "tok"; sleep 0.1; printf "en-value\n"; echo secret-line-2 >&2; exit 3`},
		wantOut: "***\n", wantErr: "***\n", wantCode: 3,
	}, {
		name:    "settings removed from the command's environment",
		env:     []string{"FLOWCI_MASK_ENV= TOK ,,UNSET", "TOK=token-value", "FLOWCI_MASK_DIRS="},
		args:    []string{"/bin/sh", "-c", `echo "${FLOWCI_MASK_ENV-unset} ${FLOWCI_MASK_DIRS-unset} $TOK"`},
		wantOut: "unset unset ***\n",
	}, {
		name:    "secret volume",
		volume:  true,
		args:    []string{"/bin/sh", "-c", `echo volume-secret old-secret outside-value`},
		wantOut: "*** old-secret outside-value\n",
	}, {
		name:     "killed by a signal",
		args:     []string{"/bin/sh", "-c", `kill -KILL $$`},
		wantCode: 128 + 9,
	}, {
		name:     "command not found",
		args:     []string{"/nonexistent/command"},
		wantErr:  "flowci-mask: fork/exec /nonexistent/command: no such file or directory\n",
		wantCode: 127,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				writeFile(t, filepath.Join(dir, name), content)
			}
			if tc.volume {
				secretVolume(t, filepath.Join(dir, "s"))
			}
			cmd := exec.Command(bin, append([]string{"run", "--"}, tc.args...)...)
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, tc.env...)
			if len(tc.files) > 0 || tc.volume {
				cmd.Env = append(cmd.Env, "FLOWCI_MASK_DIRS=:"+filepath.Join(dir, "s")) // empty entries skipped
			}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			code := exitCode(t, cmd.Run())
			if stdout.String() != tc.wantOut || stderr.String() != tc.wantErr || code != tc.wantCode {
				t.Errorf("stdout %q, stderr %q, exit %d; want %q, %q, %d",
					stdout.String(), stderr.String(), code, tc.wantOut, tc.wantErr, tc.wantCode)
			}
		})
	}
}

// TestRunLimit: values over the limit stop flowci-mask before the command runs.
func TestRunLimit(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "s", "big"), strings.Repeat("x", maxFile+1))
	marker := filepath.Join(dir, "marker")
	cmd := exec.Command(bin, "run", "--", "/bin/sh", "-c", `touch "$0"`, marker)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "FLOWCI_MASK_DIRS=" + filepath.Join(dir, "s")}
	out, err := cmd.CombinedOutput()
	if code := exitCode(t, err); code != exitSetup || !strings.Contains(string(out), "more than the limit") {
		t.Errorf("exit %d, output %q; want %d and the limit named", code, out, exitSetup)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Errorf("the command ran (marker: %v)", err)
	}
}

func TestForwardSignal(t *testing.T) {
	bin := build(t)
	cmd := exec.Command(bin, "run", "--", "/bin/sh", "-c",
		`trap 'exit 7' TERM; echo ready token-value; while :; do sleep 0.05; done`)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "FLOWCI_MASK_ENV=TOK", "TOK=token-value"}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(10*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready ***\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, cmd.Wait()); code != 7 {
		t.Errorf("exit %d, want 7 (the command's, after its TERM trap)", code)
	}
}

// TestBackgroundProcess: a process the command leaves running keeps the output pipes
// open; flowci-mask still ends soon after the command.
func TestBackgroundProcess(t *testing.T) {
	bin := build(t)
	cmd := exec.Command(bin, "run", "--", "/bin/sh", "-c", `sleep 20 & echo $!; echo done >&2`)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	if pid, perr := strconv.Atoi(strings.TrimSpace(string(out))); perr == nil {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if err != nil || stderr.String() != "done\n" {
		t.Fatalf("%v, stderr %q", err, stderr.String())
	}
	if d := time.Since(start); d > drainGrace+3*time.Second {
		t.Errorf("flowci-mask took %v, want about %v after the command's end", d, drainGrace)
	}
}

func TestInstall(t *testing.T) {
	bin := build(t)
	dest := filepath.Join(t.TempDir(), "tools", "bin", "flowci-mask")
	for range 2 { // the second time over an existing, read-only copy
		if out, err := exec.Command(bin, "install", dest).CombinedOutput(); err != nil {
			t.Fatalf("install: %v\n%s", err, out)
		}
	}
	fi, err := os.Stat(dest)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(bin)
	got, _ := os.ReadFile(dest)
	if fi.Mode().Perm() != 0o555 || !bytes.Equal(got, want) {
		t.Errorf("mode %v, %d bytes; want 0555 and the %d bytes of the binary", fi.Mode().Perm(), len(got), len(want))
	}
	out, err := exec.Command(dest, "run", "--", "/bin/echo", "installed").Output()
	if err != nil || string(out) != "installed\n" {
		t.Errorf("running the copy: %q, %v", out, err)
	}
}

// TestMaskFile: a termination message the step wrote itself is masked in place, and
// one too large to mask is emptied.
func TestMaskFile(t *testing.T) {
	m, err := mask.New([]string{"hunter2-token"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	small, big := filepath.Join(dir, "small"), filepath.Join(dir, "big")
	if err := os.WriteFile(small, []byte("failed with hunter2-token\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, []byte(strings.Repeat("hunter2-token ", maxFile/10)), 0o644); err != nil {
		t.Fatal(err)
	}
	maskFile(m, small)
	maskFile(m, big)
	if got, _ := os.ReadFile(small); string(got) != "failed with ***\n" {
		t.Errorf("small: %q", got)
	}
	if got, _ := os.ReadFile(big); len(got) != 0 {
		t.Errorf("big: %d bytes left", len(got))
	}
	maskFile(m, filepath.Join(dir, "missing")) // no panic, nothing made
	if _, err := os.Stat(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Errorf("a missing file was created: %v", err)
	}
}
