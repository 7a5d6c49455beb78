package wsfiles

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// ErrTooLarge is wrapped by the errors of Pack, Unpack and HashFiles when a limit on
// bytes or entries is passed.
var ErrTooLarge = errors.New("too large")

// maxNameLen is the longest entry name or symlink target Pack writes and, by default,
// Unpack accepts. It also bounds how deep Pack descends.
const maxNameLen = 4096

// PackLimits bound what Pack writes. A zero field takes its default.
type PackLimits struct {
	MaxBytes   int64 // file content, uncompressed
	MaxEntries int   // files, directories and symlinks
}

// DefaultPackLimits are the limits for saving one cache.
func DefaultPackLimits() PackLimits { return PackLimits{MaxBytes: 2 << 30, MaxEntries: 1_000_000} }

// Stats counts what Pack wrote or Unpack extracted.
type Stats struct {
	Files, Dirs, Symlinks int
	Skipped               int   // entries left out: see Pack and Unpack
	Bytes                 int64 // file content, uncompressed
}

// encoderOptions are Pack's zstd settings. SpeedDefault is about zstd's level 3.
// Concurrency 1 compresses each block synchronously in Write, on the caller's
// goroutine: a cache save runs beside the step's own work, and its CPU and memory
// stay one core, one window and one block. Concurrency 2 would hand blocks to
// goroutines so that reading files overlaps compression; on the 2-core bench machine
// it saved no faster (test/bench BenchmarkCacheTar) and used more CPU. The 8 MiB
// window is the library's default for the level, written out so that Unpack's 64 MiB
// window limit is known to leave room. The content checksum makes Unpack catch a
// corrupted archive.
func encoderOptions() []zstd.EOption {
	return []zstd.EOption{
		zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(8 << 20),
		zstd.WithEncoderCRC(true),
	}
}

// Pack writes to w one zstd-compressed tar of dirs, paths relative to root (see
// ValidatePattern; no glob characters, "." for the whole root), with entries named
// relative to root, in a deterministic order: each directory, then its files and
// symlinks by name, then its subdirectories by name. It keeps regular files,
// directories and symlinks, each with its permission bits (no setuid, setgid or
// sticky bit) and its mtime to the second, and no owner. A symlink is stored as it is
// when its target stays inside root (see linkStaysInside); one that does not, and
// devices, fifos, sockets and names longer than 4096 bytes, are left out and counted
// in Stats.Skipped. Symlinks under dirs are stored, never followed (one on the way
// to a dir is followed while it stays inside root). A dir that does not exist adds
// nothing: a cache's first run has none.
//
// Past lim, Pack returns an error wrapping ErrTooLarge. On any error, what w received
// is an incomplete archive to discard.
func Pack(w io.Writer, root string, dirs []string, lim PackLimits) (Stats, error) {
	for _, d := range dirs {
		if err := validateDir(d); err != nil {
			return Stats{}, err
		}
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return Stats{}, fmt.Errorf("opening workspace: %w", err)
	}
	defer r.Close()
	enc, err := zstd.NewWriter(w, encoderOptions()...)
	if err != nil {
		return Stats{}, fmt.Errorf("zstd encoder: %w", err)
	}
	p := &packer{root: r, tw: tar.NewWriter(enc), lim: lim.withDefaults(), buf: make([]byte, 256<<10)}
	for _, d := range outermost(dirs) {
		if err = p.top(d); err != nil {
			break
		}
	}
	if err == nil {
		if err = p.tw.Close(); err == nil {
			return p.st, enc.Close()
		}
	}
	// Closing enc would end the frame and make a cut archive look whole.
	enc.Reset(io.Discard)
	enc.Close()
	return p.st, err
}

func (l PackLimits) withDefaults() PackLimits {
	d := DefaultPackLimits()
	if l.MaxBytes <= 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = d.MaxEntries
	}
	return l
}

// outermost sorts dirs and drops those inside another, so no entry is written twice.
func outermost(dirs []string) []string {
	sorted := slices.Clone(dirs)
	slices.Sort(sorted)
	var out []string
	for _, d := range sorted {
		if len(out) > 0 {
			last := out[len(out)-1]
			if last == "." || d == last || strings.HasPrefix(d, last+"/") {
				continue
			}
		}
		out = append(out, d)
	}
	if slices.Contains(out, ".") {
		return []string{"."}
	}
	return out
}

// packer is one Pack's state.
type packer struct {
	root    *os.Root
	tw      *tar.Writer
	lim     PackLimits
	st      Stats
	entries int
	buf     []byte
}

// top adds one of Pack's dirs.
func (p *packer) top(d string) error {
	fi, err := p.root.Lstat(d)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("packing %q: %w", d, err)
	}
	if !fi.IsDir() {
		return p.leaf(p.root, d, d, fi)
	}
	return p.dir(d, fi)
}

// dir writes the directory rel and what is under it. Its files and symlinks are
// written while one handle on it is open; the handle is closed before its
// subdirectories are, so a deep tree does not hold a descriptor per level.
func (p *packer) dir(rel string, fi fs.FileInfo) error {
	if rel != "." {
		if err := p.header(&tar.Header{Typeflag: tar.TypeDir, Name: rel + "/"}, fi); err != nil {
			return err
		}
		p.st.Dirs++
	}
	sub, err := p.root.OpenRoot(rel)
	if err != nil {
		return fmt.Errorf("packing %q: %w", rel, err)
	}
	subdirs, err := p.leaves(sub, rel)
	sub.Close()
	if err != nil {
		return err
	}
	for _, d := range subdirs {
		if err := p.dir(d.rel, d.fi); err != nil {
			return err
		}
	}
	return nil
}

type subdir struct {
	rel string
	fi  fs.FileInfo
}

// leaves writes the files and symlinks of the directory sub (named rel) by name and
// returns its subdirectories.
func (p *packer) leaves(sub *os.Root, rel string) ([]subdir, error) {
	names, err := readNames(sub, p.lim.MaxEntries-p.entries)
	if err != nil {
		return nil, fmt.Errorf("packing %q: %w", rel, err)
	}
	var subdirs []subdir
	for _, name := range names {
		child := path.Join(rel, name)
		fi, err := sub.Lstat(name)
		if err != nil {
			return nil, fmt.Errorf("packing %q: %w", child, err)
		}
		switch {
		case len(child)+1 > maxNameLen:
			p.st.Skipped++
		case fi.IsDir():
			subdirs = append(subdirs, subdir{child, fi})
		default:
			if err := p.leaf(sub, name, child, fi); err != nil {
				return nil, err
			}
		}
	}
	return subdirs, nil
}

// leaf writes a file or symlink found as name in dir, rel under the root.
func (p *packer) leaf(dir *os.Root, name, rel string, fi fs.FileInfo) error {
	switch {
	case fi.Mode().IsRegular():
		return p.file(dir, name, rel)
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := dir.Readlink(name)
		if err != nil {
			return fmt.Errorf("packing %q: %w", rel, err)
		}
		if len(target) > maxNameLen || !linkStaysInside(rel, target) {
			p.st.Skipped++
			return nil
		}
		p.st.Symlinks++
		return p.header(&tar.Header{Typeflag: tar.TypeSymlink, Name: rel, Linkname: target}, fi)
	}
	p.st.Skipped++ // a device, fifo or socket
	return nil
}

// file writes a regular file. Its header is made from the opened file, so size and
// content agree even if the name was replaced since it was listed.
func (p *packer) file(dir *os.Root, name, rel string) error {
	f, fi, err := openRegular(dir, name)
	if err != nil {
		return fmt.Errorf("packing %q: %w", rel, err)
	}
	defer f.Close()
	if fi.Size() > p.lim.MaxBytes-p.st.Bytes {
		return fmt.Errorf("packing %q: more than %d bytes: %w", rel, p.lim.MaxBytes, ErrTooLarge)
	}
	if err := p.header(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Size: fi.Size()}, fi); err != nil {
		return err
	}
	// The struct hides the tar writer's ReadFrom, which would copy through a 32 KiB
	// buffer of its own.
	n, err := io.CopyBuffer(struct{ io.Writer }{p.tw}, io.LimitReader(f, fi.Size()), p.buf)
	if err == nil && n < fi.Size() {
		err = errors.New("file shrank while it was packed")
	}
	if err != nil {
		return fmt.Errorf("packing %q: %w", rel, err)
	}
	p.st.Files++
	p.st.Bytes += n
	return nil
}

// header completes h from fi (mode, mtime; no owner) and writes it.
func (p *packer) header(h *tar.Header, fi fs.FileInfo) error {
	p.entries++
	if p.entries > p.lim.MaxEntries {
		return fmt.Errorf("packing: more than %d entries: %w", p.lim.MaxEntries, ErrTooLarge)
	}
	h.Mode = int64(fi.Mode().Perm())
	// Whole seconds, as GNU tar keeps them, so no header needs a PAX record for them.
	h.ModTime = fi.ModTime().Truncate(time.Second)
	if err := p.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("packing %q: %w", h.Name, err)
	}
	return nil
}

// readNames returns the sorted names in dir, refusing more than max of them.
func readNames(dir *os.Root, max int) ([]string, error) {
	f, err := dir.Open(".")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var names []string
	for {
		batch, err := f.ReadDir(256)
		for _, e := range batch {
			names = append(names, e.Name())
		}
		if len(names) > max {
			return nil, fmt.Errorf("more than %d entries: %w", max, ErrTooLarge)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	slices.Sort(names)
	return names, nil
}
