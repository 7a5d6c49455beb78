// Command flowci-mask runs a CI step's command with every secret value the step can
// read printed as "***" in its output, and then keeps the files the step names as
// artifacts in the archive.
//
//	flowci-mask install DEST   copy this binary to DEST (an init container, into an emptyDir)
//	flowci-mask run -- CMD...  run CMD with its stdout and stderr masked (the step, as PID 1)
//
// run masks the values of the environment variables named in FLOWCI_MASK_ENV
// (comma-separated) and the contents of the files under the directories in
// FLOWCI_MASK_DIRS (colon-separated; Secret volumes). It is copied into every step pod
// that uses secrets or keeps artifacts, so it uses little but the standard library,
// internal/mask and internal/wsfiles.
//
// With FLOWCI_ARTIFACTS set, once the command has exited run collects the files its
// globs match under FLOWCI_ARTIFACTS_ROOT (never through a symlink out of it) and
// streams them as one tar to the archive at FLOWCI_ARCHIVE_URL, with the pod's
// projected token of audience flow-ci-archive (artifacts.go).
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/flow-ci/flow-ci/internal/mask"
	"github.com/flow-ci/flow-ci/internal/shorten"
)

const (
	envNames = "FLOWCI_MASK_ENV"
	envDirs  = "FLOWCI_MASK_DIRS"
	// maxFile bounds one secret file; a Secret holds at most 1 MiB in all anyway.
	maxFile = 1 << 20
	// exitSetup is the exit code when flowci-mask itself fails before the command runs;
	// 125 is what env(1) and docker use for that, apart from the command's own codes.
	exitSetup = 125
	// drainGrace is how long output may still arrive after the command exits. A process
	// the command left running ("server &") holds the pipes open and would otherwise keep
	// the step from ending.
	drainGrace = 2 * time.Second
)

func main() { os.Exit(cli(os.Args[1:])) }

func cli(args []string) int {
	switch {
	case len(args) == 2 && args[0] == "install":
		if err := install(args[1]); err != nil {
			fmt.Fprintln(os.Stderr, "flowci-mask: install:", err)
			return 1
		}
		return 0
	case len(args) >= 3 && args[0] == "run" && args[1] == "--":
		return run(args[2:])
	}
	fmt.Fprintln(os.Stderr, "usage: flowci-mask install DEST | flowci-mask run -- CMD [ARG...]")
	return 2
}

// install copies the running executable to dest, mode 0555. It writes a temporary file
// and renames it, so dest is never a half-written binary and an existing one (read-only)
// is replaced.
func install(dest string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	in, err := os.Open(self)
	if err != nil {
		return err
	}
	defer in.Close()
	dir := filepath.Dir(dest)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".flowci-mask-*")
	if err != nil {
		return err
	}
	_, err = io.Copy(tmp, in)
	if err == nil {
		err = tmp.Chmod(0o555)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dest)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// run runs argv with masked output and returns the exit code for flowci-mask: the
// command's, or 128+N when signal N killed it.
func run(argv []string) int {
	values, err := readValues()
	var m *mask.Masker
	if err == nil {
		m, err = mask.New(values)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "flowci-mask: not running %s: %v\n", argv[0], err)
		return exitSetup
	}
	// Registered before the start, so a signal that arrives meanwhile is forwarded too.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)

	outR, outW, err := os.Pipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "flowci-mask:", err)
		return exitSetup
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "flowci-mask:", err)
		return exitSetup
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return name == envNames || name == envDirs || name == envArchiveCA
	})
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, outW, errW
	err = cmd.Start()
	// The command has its own copies; ours would keep the pipes from reaching EOF.
	outW.Close()
	errW.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "flowci-mask:", err)
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			return 127
		}
		return 126
	}
	go func() {
		for s := range sigs {
			// This fails only when the command has exited: no one is left to tell.
			_ = cmd.Process.Signal(s)
		}
	}()
	tail := &shorten.TailWriter{Max: maxTail}
	done := []<-chan struct{}{pump(m.Writer(io.MultiWriter(os.Stdout, tail)), outR), pump(m.Writer(io.MultiWriter(os.Stderr, tail)), errR)}
	code := reap(cmd.Process.Pid)
	drain(done, outR, errR)
	maskFile(m, terminationLog)
	keepArtifacts(code, tail, m)
	return code
}

// terminationLog is the container's termination message, which the kubelet copies into
// the pod's status (and flow-ci into the run's) instead of the log tail when it is not
// empty. A step can write it directly, past our pipes.
var terminationLog = "/dev/termination-log"

// maskFile masks the values in a file in place. One over maxFile is emptied instead (the
// kubelet then falls back to the masked log tail); a missing or unwritable one is left
// alone, as is the rest of the step's result.
func maskFile(m *mask.Masker, path string) {
	info, err := os.Stat(path)
	if err != nil || info.Size() == 0 || !info.Mode().IsRegular() {
		return
	}
	if info.Size() > maxFile {
		_ = os.Truncate(path, 0)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		return
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	f.Close()
	if err != nil || len(data) > maxFile {
		_ = os.Truncate(path, 0) // it grew past the limit meanwhile
		return
	}
	if masked := m.Bytes(data); !bytes.Equal(masked, data) {
		_ = os.WriteFile(path, masked, 0)
	}
}

// pump copies r to w until EOF or until r is closed, then flushes w.
func pump(w *mask.Writer, r *os.File) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := io.Copy(w, r)
		if errors.Is(err, os.ErrClosed) { // drain closed r: the end, not a failure
			err = nil
		}
		if err != nil {
			// Keep reading: a full pipe would block the command.
			_, _ = io.Copy(io.Discard, r)
		}
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "flowci-mask: output lost:", err)
		}
	}()
	return done
}

// reap waits until the command exits and returns its exit code. As PID 1 of the
// container, flowci-mask also inherits the processes the command leaves behind, and
// nothing else reaps them; waiting for any child, not just the command, keeps those that
// end while the command runs from lingering as zombies. Nothing else in this program
// starts processes, so no other waiter is robbed of a status.
func reap(pid int) int {
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(-1, &ws, 0, nil)
		switch {
		case errors.Is(err, syscall.EINTR):
		case err != nil:
			fmt.Fprintln(os.Stderr, "flowci-mask: wait:", err)
			return exitSetup
		case got == pid && ws.Signaled():
			return 128 + int(ws.Signal())
		case got == pid:
			return ws.ExitStatus()
		}
	}
}

// drain waits for both copies to finish, but after drainGrace closes the pipes to end
// them, for a process the command left running may never close its end.
func drain(done []<-chan struct{}, pipes ...*os.File) {
	grace := time.NewTimer(drainGrace)
	defer grace.Stop()
	for _, d := range done {
		select {
		case <-d:
		case <-grace.C:
			for _, p := range pipes {
				p.Close()
			}
			<-d
		}
	}
}

// readValues returns the values of the variables named in FLOWCI_MASK_ENV and the
// contents of the files under FLOWCI_MASK_DIRS.
func readValues() ([]string, error) {
	var c collector
	for name := range strings.SplitSeq(os.Getenv(envNames), ",") {
		name = strings.TrimSpace(name)
		v, ok := os.LookupEnv(name)
		if !ok || name == "" {
			continue
		}
		if err := c.add(v, "$"+name); err != nil {
			return nil, err
		}
	}
	for dir := range strings.SplitSeq(os.Getenv(envDirs), ":") {
		if dir == "" {
			continue
		}
		if err := c.dir(dir); err != nil {
			return nil, err
		}
	}
	return c.values, nil
}

// collector gathers values up to mask.MaxBytes, failing as soon as they pass it rather
// than reading everything first.
type collector struct {
	values []string
	total  int
}

func (c *collector) add(v, from string) error {
	c.total += len(v)
	if c.total > mask.MaxBytes {
		return fmt.Errorf("the secret values are more than %d bytes in all (at %s)", mask.MaxBytes, from)
	}
	c.values = append(c.values, v)
	return nil
}

// dir reads the files under root. A Secret volume keeps its files in a hidden
// "..<timestamp>" directory, reached through the "..data" symlink, and shows each key as
// a symlink to "..data/KEY"; during an update two such directories may exist. So names
// starting with ".." are skipped, and a symlink is read when it leads to a regular file
// inside root: each key once, the current version. Links out of root are not followed.
func (c *collector) dir(root string) error {
	top, err := filepath.EvalSymlinks(root)
	if err != nil {
		return err
	}
	return filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case path != top && strings.HasPrefix(d.Name(), ".."):
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		case d.Type().IsRegular():
			return c.file(path)
		case d.Type()&fs.ModeSymlink == 0:
			return nil
		}
		target, err := filepath.EvalSymlinks(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(top, target)
		if err != nil || !filepath.IsLocal(rel) {
			return nil
		}
		if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
			return err
		}
		return c.file(path)
	})
}

// file adds the contents of path, at most maxFile bytes.
func (c *collector) file(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return err
	}
	if len(b) > maxFile {
		return fmt.Errorf("%s: more than the limit of %d bytes for a secret file", path, maxFile)
	}
	return c.add(string(b), path)
}
