package wsfiles

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// entry is one tar entry of a hand-built archive.
type entry struct {
	typ          byte
	name, target string
	body         string
	size         int64 // for typ TypeReg when body is empty: that many zero bytes
}

// tarStream is entries as an uncompressed tar stream. The tar writer checks
// nothing a reader must not also check, so hostile names go through as written.
func tarStream(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		size := int64(len(e.body))
		if e.size > 0 {
			size = e.size
		}
		if e.typ != tar.TypeReg {
			size = 0
		}
		if e.typ == tar.TypeXGlobalHeader {
			must(t, tw.WriteHeader(&tar.Header{Typeflag: e.typ, PAXRecords: map[string]string{"comment": e.body}}))
			continue
		}
		h := &tar.Header{Typeflag: e.typ, Name: e.name, Linkname: e.target, Mode: 0o644, Size: size, Format: tar.FormatPAX}
		must(t, tw.WriteHeader(h))
		if e.size > 0 {
			_, err := io.CopyN(tw, zeros{}, e.size)
			must(t, err)
		} else if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	must(t, tw.Close())
	return buf.Bytes()
}

// compress is b as one zstd stream, at the fastest level to keep bombs cheap to make.
func compress(t testing.TB, b ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	must(t, err)
	for _, p := range b {
		_, err := enc.Write(p)
		must(t, err)
	}
	must(t, enc.Close())
	return buf.Bytes()
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// outsideOf snapshots everything under dir except root, which it does not enter: a
// hostile archive may leave directories there that cannot be read.
func outsideOf(t testing.TB, dir, root string) map[string]node {
	t.Helper()
	out := map[string]node{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case p == root:
			return filepath.SkipDir
		case p == dir:
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n := node{Type: fi.Mode().Type().String(), Mode: fi.Mode().Perm(), MTime: fi.ModTime()}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			n.Content, err = os.Readlink(p)
		case d.Type().IsRegular():
			var b []byte
			b, err = os.ReadFile(p)
			n.Content = string(b)
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = n
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestUnpackRefusesHostileArchives(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
		wantErr string
	}{
		{"parent", []entry{{typ: tar.TypeReg, name: "../x", body: "p"}}, `".."`},
		{"absolute", []entry{{typ: tar.TypeReg, name: "/etc/x", body: "p"}}, "absolute"},
		{"climbing", []entry{{typ: tar.TypeReg, name: "a/../../x", body: "p"}}, `".."`},
		{"dot-dot inside", []entry{{typ: tar.TypeReg, name: "a/../b", body: "p"}}, `".."`},
		{"symlink to /etc, then through it", []entry{
			{typ: tar.TypeSymlink, name: "l", target: "/etc"},
			{typ: tar.TypeReg, name: "l/passwd", body: "root::0:0::/:/bin/sh\n"}}, "leaves the workspace"},
		{"symlink up", []entry{
			{typ: tar.TypeSymlink, name: "l", target: "../.."},
			{typ: tar.TypeReg, name: "l/x", body: "p"}}, "leaves the workspace"},
		{"symlink under a symlink", []entry{
			{typ: tar.TypeSymlink, name: "s", target: "."},
			{typ: tar.TypeSymlink, name: "s/l", target: "../x"}}, "under the symlink"},
		{"hard link", []entry{
			{typ: tar.TypeReg, name: "a", body: "p"},
			{typ: tar.TypeLink, name: "h", target: "../outside"}}, "hard link"},
		{"device", []entry{{typ: tar.TypeChar, name: "null"}}, "device"},
		{"fifo", []entry{{typ: tar.TypeFifo, name: "p"}}, "fifo"},
		{"file over a directory", []entry{
			{typ: tar.TypeDir, name: "d/"}, {typ: tar.TypeReg, name: "d", body: "p"}}, "directory is in the way"},
		{"long name", []entry{{typ: tar.TypeReg, name: strings.Repeat("n/", 2100) + "x", body: "p"}}, "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, _ := workspace(t, nil)
			parent := filepath.Dir(root)
			before := outsideOf(t, parent, root)
			_, err := Unpack(bytes.NewReader(compress(t, tarStream(t, tt.entries...))), root, UnpackLimits{})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Unpack = %v, want an error saying %q", err, tt.wantErr)
			}
			if diff := cmpNodes(before, outsideOf(t, parent, root)); diff != "" {
				t.Errorf("outside the root changed:\n%s", diff)
			}
			if _, err := os.Stat("/etc/passwd.wsfiles-test"); err == nil {
				t.Error("wrote into /etc")
			}
		})
	}
}

// TestUnpackThroughWorkspaceSymlinks restores into a workspace whose own symlinks
// lead out of it: the archive is clean, the workspace is not.
func TestUnpackThroughWorkspaceSymlinks(t *testing.T) {
	for _, link := range []string{"..", "../..", "/tmp"} {
		root, _ := workspace(t, map[string]string{"l": "->" + link})
		parent := filepath.Dir(root)
		before := outsideOf(t, parent, root)
		stream := compress(t, tarStream(t, entry{typ: tar.TypeReg, name: "l/x", body: "p"}, entry{typ: tar.TypeDir, name: "l/d/"}))
		if _, err := Unpack(bytes.NewReader(stream), root, UnpackLimits{}); err == nil {
			t.Errorf("l -> %s: Unpack = nil error", link)
		}
		if diff := cmpNodes(before, outsideOf(t, parent, root)); diff != "" {
			t.Errorf("l -> %s: outside the root changed: %s", link, diff)
		}
		if _, err := os.Lstat("/tmp/x"); err == nil && link == "/tmp" {
			t.Errorf("l -> %s: wrote /tmp/x", link)
		}
	}
}

func cmpNodes(a, b map[string]node) string {
	if len(a) != len(b) {
		return "different paths"
	}
	for k, v := range a {
		if b[k] != v {
			return k + " changed"
		}
	}
	return ""
}

func TestUnpackLimits(t *testing.T) {
	var many []entry
	for i := range 5 {
		many = append(many, entry{typ: tar.TypeReg, name: "f" + string(rune('a'+i)), body: "x"})
	}
	var mib []entry
	for i := range 20 {
		mib = append(mib, entry{typ: tar.TypeReg, name: "m" + string(rune('a'+i)), size: 1 << 20})
	}
	tests := []struct {
		name   string
		stream []byte
		lim    UnpackLimits
	}{
		{"entries", compress(t, tarStream(t, many...)), UnpackLimits{MaxEntries: 3}},
		{"many files under the byte limit each", compress(t, tarStream(t, mib...)), UnpackLimits{MaxBytes: 10 << 20}},
		{"zeros after the end of the tar", compress(t, tarStream(t, many...), make([]byte, 20<<20)), UnpackLimits{MaxBytes: 10 << 20}},
	}
	for _, tt := range tests {
		if _, err := Unpack(bytes.NewReader(tt.stream), t.TempDir(), tt.lim); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: Unpack = %v, want ErrTooLarge", tt.name, err)
		}
	}
}

// zeroFrames is n MiB of zeros as n zstd frames of 1 MiB: a stream of frames is one
// stream to a decoder, and one frame made once keeps a gigabyte bomb cheap to build.
func zeroFrames(t testing.TB, n int) []byte {
	frame := compress(t, make([]byte, 1<<20))
	return bytes.Repeat(frame, n)
}

// TestUnpackZstdBomb: 1 GiB of zeros in a small stream must fail against a 10 MiB
// limit at once, without writing or allocating the gigabyte: as one file's content,
// and after the tar's end, where only the count of decompressed bytes can stop it.
func TestUnpackZstdBomb(t *testing.T) {
	// The header alone: its gigabyte of content follows as zero frames.
	var header bytes.Buffer
	must(t, tar.NewWriter(&header).WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "zeros", Mode: 0o644, Size: 1 << 30}))
	oneFile := append(compress(t, header.Bytes()), zeroFrames(t, 1024)...)
	after := append(compress(t, tarStream(t, entry{typ: tar.TypeReg, name: "f", body: "x"})), zeroFrames(t, 1024)...)
	for name, bomb := range map[string][]byte{"one file": oneFile, "after the end": after} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := Unpack(bytes.NewReader(bomb), root, UnpackLimits{MaxBytes: 10 << 20})
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Unpack of %d bytes = %v, want ErrTooLarge", len(bomb), err)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
				t.Errorf("allocated %d MiB", alloc>>20)
			}
			if elapsed > 10*time.Second {
				t.Errorf("took %v", elapsed)
			}
			if st := snapshot(t, root); len(st) > 1 {
				t.Errorf("wrote %v", st)
			}
		})
	}
}

func TestUnpackDamagedStreams(t *testing.T) {
	src := cacheTree(t)
	var buf bytes.Buffer
	if _, err := Pack(&buf, src, []string{"a"}, PackLimits{}); err != nil {
		t.Fatal(err)
	}
	whole := buf.Bytes()
	flipped := bytes.Clone(whole)
	flipped[len(flipped)/2] ^= 0x5a
	tests := []struct {
		name   string
		stream []byte
	}{
		{"cut in the middle", whole[:len(whole)/2]},
		{"cut before the checksum", whole[:len(whole)-2]}, // the tar stream is whole
		{"a byte flipped", flipped},
		{"not zstd", []byte("plain text, not an archive")},
		{"empty", nil},
	}
	for _, tt := range tests {
		dst := t.TempDir()
		writable(t, dst)
		if _, err := Unpack(bytes.NewReader(tt.stream), dst, UnpackLimits{}); err == nil {
			t.Errorf("%s: Unpack = nil error", tt.name)
		}
	}
}

// TestUnpackSkipsGlobalHeaders: a PAX global header is metadata, not a file.
func TestUnpackSkipsGlobalHeaders(t *testing.T) {
	stream := compress(t, tarStream(t, entry{typ: tar.TypeXGlobalHeader, name: "g"}, entry{typ: tar.TypeReg, name: "f", body: "x"}))
	root := t.TempDir()
	st, err := Unpack(bytes.NewReader(stream), root, UnpackLimits{})
	if err != nil || st != (Stats{Files: 1, Skipped: 1, Bytes: 1}) {
		t.Fatalf("Unpack = %+v, %v", st, err)
	}
	if fi, err := os.Lstat(filepath.Join(root, "f")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("f: %v, %v", fi, err)
	}
}
