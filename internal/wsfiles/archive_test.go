package wsfiles

import (
	"bytes"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// node is what a tree comparison sees of one path.
type node struct {
	Type    string // "file", "dir", "symlink"
	Mode    fs.FileMode
	MTime   time.Time // zero for symlinks, whose own mtime is not kept
	Content string    // a file's bytes, a symlink's target
}

// snapshot returns every path under dir, without following symlinks.
func snapshot(t testing.TB, dir string) map[string]node {
	t.Helper()
	out := map[string]node{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		n := node{Mode: fi.Mode().Perm(), MTime: fi.ModTime()}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			n = node{Type: "symlink", Content: target}
			if err != nil {
				return err
			}
		case fi.IsDir():
			n.Type = "dir"
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			n.Type, n.Content = "file", string(b)
		default:
			n.Type = fi.Mode().Type().String()
		}
		out[filepath.ToSlash(rel)] = n
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// writable lets the test's cleanup remove dirs a test made read-only, when the tests
// do not run as root.
func writable(t testing.TB, dir string) {
	t.Cleanup(func() {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(p, 0o755)
			}
			return nil
		})
	})
}

// cacheTree builds a source tree for round trips: modes, whole-second mtimes, an
// empty directory, a read-only one, a large file, internal symlinks, and what Pack
// leaves out (a symlink out, a fifo).
func cacheTree(t testing.TB) string {
	root, _ := workspace(t, map[string]string{
		"a/f.txt":            "hello",
		"a/empty":            "",
		"a/exec.sh":          "#!/bin/sh\necho hi\n",
		"a/sub/deeper/x.o":   "object",
		"a/emptydir":         "/",
		"a/ro/locked.txt":    "locked",
		"a/link":             "->sub/deeper/x.o",
		"a/sub/up":           "->../f.txt",
		"a/dirlink":          "->sub",
		"a/out":              "->../../outside",
		"a/abs":              "->/etc/passwd",
		"a/pipe":             "|fifo",
		"b/mod/cache/v1.zip": "zip",
	})
	writable(t, root)
	big := make([]byte, 3<<20+17)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = "abcdefgh"[rng.IntN(8)]
	}
	must(t, os.WriteFile(filepath.Join(root, "a/sub/big.bin"), big, 0o644))
	modes := map[string]fs.FileMode{"a/exec.sh": 0o755, "a/f.txt": 0o600, "a/ro/locked.txt": 0o444,
		"a/sub/deeper/x.o": 0o4755} // setuid: dropped by Pack
	for name, m := range modes {
		must(t, os.Chmod(filepath.Join(root, name), m))
	}
	// mtimes last, deepest first, since writing into a directory changes its own.
	base := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	for i, name := range []string{"a/sub/deeper/x.o", "a/sub/deeper", "a/sub/big.bin", "a/sub", "a/ro/locked.txt",
		"a/ro", "a/f.txt", "a/empty", "a/exec.sh", "a/emptydir", "a", "b/mod/cache/v1.zip", "b/mod/cache", "b/mod", "b"} {
		ts := base.Add(time.Duration(i) * time.Hour)
		must(t, os.Chtimes(filepath.Join(root, name), ts, ts))
	}
	must(t, os.Chmod(filepath.Join(root, "a/ro"), 0o555))
	return root
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestPackUnpackRoundTrip(t *testing.T) {
	src := cacheTree(t)
	var buf bytes.Buffer
	st, err := Pack(&buf, src, []string{"b", "a", "a/sub", "missing"}, PackLimits{})
	if err != nil {
		t.Fatal(err)
	}
	wantPack := Stats{Files: 7, Dirs: 8, Symlinks: 3, Skipped: 3, Bytes: int64(5 + 0 + 18 + 6 + 6 + 3<<20 + 17 + 3)}
	if diff := cmp.Diff(wantPack, st); diff != "" {
		t.Errorf("Pack stats (-want +got):\n%s", diff)
	}

	dst := t.TempDir()
	writable(t, dst)
	got, err := Unpack(bytes.NewReader(buf.Bytes()), dst, UnpackLimits{})
	if err != nil {
		t.Fatal(err)
	}
	wantPack.Skipped = 0
	if diff := cmp.Diff(wantPack, got); diff != "" {
		t.Errorf("Unpack stats (-want +got):\n%s", diff)
	}

	want := snapshot(t, src)
	for _, left := range []string{"a/out", "a/abs", "a/pipe"} {
		delete(want, left)
	}
	x := want["a/sub/deeper/x.o"]
	x.Mode = 0o755 // no setuid
	want["a/sub/deeper/x.o"] = x
	if diff := cmp.Diff(want, snapshot(t, dst)); diff != "" {
		t.Errorf("restored tree (-want +got):\n%s", diff)
	}
}

func TestPackIsDeterministic(t *testing.T) {
	src := cacheTree(t)
	var one, two bytes.Buffer
	for _, b := range []*bytes.Buffer{&one, &two} {
		if _, err := Pack(b, src, []string{"."}, PackLimits{}); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(one.Bytes(), two.Bytes()) {
		t.Error("two packs of the same tree differ")
	}
}

func TestPackMissingDirIsEmpty(t *testing.T) {
	root, _ := workspace(t, nil)
	var buf bytes.Buffer
	st, err := Pack(&buf, root, []string{"node_modules", ".cache/go-build"}, PackLimits{})
	if err != nil || st != (Stats{}) {
		t.Fatalf("Pack of missing dirs = %+v, %v", st, err)
	}
	got, err := Unpack(&buf, t.TempDir(), UnpackLimits{})
	if err != nil || got != (Stats{}) {
		t.Fatalf("Unpack of an empty cache = %+v, %v", got, err)
	}
}

func TestPackLimits(t *testing.T) {
	src := cacheTree(t)
	tests := []struct {
		name string
		lim  PackLimits
	}{
		{"bytes", PackLimits{MaxBytes: 1 << 20}},
		{"entries", PackLimits{MaxEntries: 5}},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		if _, err := Pack(&buf, src, []string{"."}, tt.lim); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: Pack = %v, want ErrTooLarge", tt.name, err)
		}
	}
}

func TestPackRefusesBadDirs(t *testing.T) {
	root, _ := workspace(t, nil)
	for _, d := range []string{"../x", "/etc", "a/*", ""} {
		if _, err := Pack(&bytes.Buffer{}, root, []string{d}, PackLimits{}); err == nil {
			t.Errorf("Pack(%q) = nil error", d)
		}
	}
}

// TestUnpackReplacesWithoutFollowing restores over a workspace whose files are
// symlinks out of it: each is replaced, and what it pointed to is untouched.
func TestUnpackReplacesWithoutFollowing(t *testing.T) {
	src, _ := workspace(t, map[string]string{"c/f": "new", "c/g": "new too"})
	var buf bytes.Buffer
	if _, err := Pack(&buf, src, []string{"c"}, PackLimits{}); err != nil {
		t.Fatal(err)
	}
	dst, outside := workspace(t, map[string]string{"c/f": "->../../outside", "c/g": "old"})
	if _, err := Unpack(&buf, dst, UnpackLimits{}); err != nil {
		t.Fatal(err)
	}
	want := map[string]node{
		"c":   {Type: "dir", Mode: 0o755},
		"c/f": {Type: "file", Mode: 0o644, Content: "new"},
		"c/g": {Type: "file", Mode: 0o644, Content: "new too"},
	}
	got := snapshot(t, dst)
	for k, n := range got {
		n.MTime = time.Time{}
		got[k] = n
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if b, _ := os.ReadFile(outside); string(b) != "secret" {
		t.Errorf("outside file now holds %q", b)
	}
}
