package wsfiles

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzUnpack feeds Unpack tar streams (compressed here, so the fuzzer works on the
// tar layer) and, with raw set, zstd streams as they come. Whatever it is given,
// nothing outside the root may appear or change, and every symlink left inside must
// stay inside.
func FuzzUnpack(f *testing.F) {
	for _, seed := range [][]entry{
		{{typ: tar.TypeReg, name: "a/b", body: "x"}, {typ: tar.TypeDir, name: "a/"}},
		{{typ: tar.TypeReg, name: "../x", body: "x"}},
		{{typ: tar.TypeSymlink, name: "l", target: "../outside"}, {typ: tar.TypeReg, name: "l", body: "x"}},
		{{typ: tar.TypeSymlink, name: "s", target: "."}, {typ: tar.TypeSymlink, name: "s/l", target: "../x"}},
		{{typ: tar.TypeSymlink, name: "d/l", target: ".."}, {typ: tar.TypeReg, name: "d/l/l/x", body: "x"}},
		{{typ: tar.TypeLink, name: "h", target: "../outside"}},
	} {
		f.Add(tarStream(f, seed...), false)
	}
	// A small Pack output: the fuzzer minimizes what it finds interesting, and each
	// try at a large input costs a full Unpack.
	src, _ := workspace(f, map[string]string{"a/f": "x", "a/l": "->f", "a/d/g": "y", "b": "->a/d"})
	var packed bytes.Buffer
	if _, err := Pack(&packed, src, []string{"."}, PackLimits{}); err != nil {
		f.Fatal(err)
	}
	f.Add(packed.Bytes(), true)

	f.Fuzz(func(t *testing.T, data []byte, raw bool) {
		stream := data
		if !raw {
			stream = compress(t, data)
		}
		root, outside := workspace(t, nil)
		writable(t, root)
		parent := filepath.Dir(root)
		before := outsideOf(t, parent, root)
		_, _ = Unpack(bytes.NewReader(stream), root, UnpackLimits{MaxBytes: 8 << 20, MaxEntries: 200})
		if diff := cmpNodes(before, outsideOf(t, parent, root)); diff != "" {
			t.Fatalf("outside the root: %s", diff)
		}
		if b, err := os.ReadFile(outside); err != nil || string(b) != "secret" {
			t.Fatalf("outside file: %q, %v", b, err)
		}
		checkLinksInside(t, root)
	})
}

// checkLinksInside fails if a symlink under root, resolved by the kernel as a later
// step would, leads out of root.
func checkLinksInside(t *testing.T, root string) {
	t.Helper()
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		t.Fatal(err)
	}
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		resolved, err := filepath.EvalSymlinks(p)
		if err != nil {
			return nil // dangling, or a loop: leads nowhere
		}
		if resolved != realRoot && !strings.HasPrefix(resolved, realRoot+string(filepath.Separator)) {
			t.Fatalf("symlink %s leads to %s, outside the root", p, resolved)
		}
		return nil
	})
}
