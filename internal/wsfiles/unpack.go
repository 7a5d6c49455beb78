package wsfiles

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// maxWindow bounds the zstd window Unpack accepts, and so the decoder's memory: Pack
// writes 8 MiB windows, and the zstd CLI's levels up to 19 stay within 8 MiB too.
const maxWindow = 64 << 20

// UnpackLimits bound what Unpack extracts. A zero field takes its default.
type UnpackLimits struct {
	// MaxBytes bounds the decompressed tar stream: file content and also headers and
	// padding, so it is set above PackLimits.MaxBytes.
	MaxBytes   int64
	MaxEntries int // tar entries of every type
	MaxNameLen int // bytes of an entry's name or symlink target
}

// DefaultUnpackLimits are the limits for restoring one cache.
func DefaultUnpackLimits() UnpackLimits {
	return UnpackLimits{MaxBytes: 4 << 30, MaxEntries: 1_000_000, MaxNameLen: maxNameLen}
}

func (l UnpackLimits) withDefaults() UnpackLimits {
	d := DefaultUnpackLimits()
	if l.MaxBytes <= 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = d.MaxEntries
	}
	if l.MaxNameLen <= 0 {
		l.MaxNameLen = d.MaxNameLen
	}
	return l
}

// Unpack extracts a zstd-compressed tar (as Pack writes) from r into root, through an
// os.Root so that no entry is written outside it whatever the archive holds. It
// refuses, with an error, entry names that are absolute, hold a ".." segment or NUL,
// symlinks whose target is absolute or leaves root (see linkStaysInside) or that sit
// under a symlinked directory, hard links, devices and fifos. A file replaces what is
// at its name (a file or symlink is removed, never written through; a directory there
// is an error). Directories are created as MkdirAll does; their modes and mtimes are
// set once everything else is written, so a read-only directory can be filled first.
// PAX global headers are skipped and counted in Stats.Skipped.
//
// Past lim, Unpack returns an error wrapping ErrTooLarge, before writing a file that
// would pass it. A truncated or corrupt stream is an error too, also when the tar
// stream ended cleanly before it. On error, root keeps what was extracted so far: the
// caller removes it.
func Unpack(r io.Reader, root string, lim UnpackLimits) (Stats, error) {
	lim = lim.withDefaults()
	rt, err := os.OpenRoot(root)
	if err != nil {
		return Stats{}, fmt.Errorf("opening workspace: %w", err)
	}
	defer rt.Close()
	// One decoder goroutine at most (none: concurrency 1 decodes in Read), a bounded
	// window, and no whole-buffer decoding of small in-memory inputs, which would
	// allocate their decompressed size at once.
	dec, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(maxWindow), zstd.WithDecoderMaxMemory(maxWindow), zstd.WithDecodeBuffersBelow(0))
	if err != nil {
		return Stats{}, fmt.Errorf("zstd decoder: %w", err)
	}
	defer dec.Close()
	stream := &limitReader{r: dec, n: lim.MaxBytes}
	u := &unpacker{root: rt, lim: lim, buf: make([]byte, 256<<10), made: map[string]bool{}}
	tr := tar.NewReader(stream)
	for entries := 1; ; entries++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return u.st, fmt.Errorf("reading cache archive: %w", err)
		}
		if entries > lim.MaxEntries {
			return u.st, fmt.Errorf("cache archive: more than %d entries: %w", lim.MaxEntries, ErrTooLarge)
		}
		if err := u.entry(hdr, tr); err != nil {
			return u.st, err
		}
	}
	// The tar stream may end before the zstd frame does: reading on to the end checks
	// that the frame is whole and its checksum right.
	if _, err := io.CopyBuffer(io.Discard, stream, u.buf); err != nil {
		return u.st, fmt.Errorf("reading cache archive: %w", err)
	}
	if stream.n == lim.MaxBytes {
		// Pack writes at least the tar's end marker; an empty stream was cut.
		return u.st, errors.New("reading cache archive: it is empty")
	}
	return u.st, u.finishDirs()
}

// unpacker is one Unpack's state.
type unpacker struct {
	root *os.Root
	lim  UnpackLimits
	st   Stats
	dirs []dirMeta       // in archive order; applied in reverse, children first
	made map[string]bool // directories known to exist (see parent)
	buf  []byte
}

type dirMeta struct {
	name  string
	mode  fs.FileMode
	mtime time.Time
}

// entry extracts one tar entry whose content is body.
func (u *unpacker) entry(hdr *tar.Header, body io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		u.st.Skipped++
		return nil
	}
	name, err := u.entryName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "." && hdr.Typeflag == tar.TypeDir {
		return nil // the root itself: its mode and mtime are the caller's
	}
	if name == "." {
		return fmt.Errorf("cache archive: entry %q names the root", hdr.Name)
	}
	mode := fs.FileMode(hdr.Mode) & fs.ModePerm
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := u.root.MkdirAll(name, 0o755); err != nil {
			return fmt.Errorf("restoring %q: %w", name, err)
		}
		u.made[name] = true
		u.dirs = append(u.dirs, dirMeta{name: name, mode: mode, mtime: hdr.ModTime})
		u.st.Dirs++
		return nil
	case tar.TypeReg:
		return u.file(name, hdr, mode, body)
	case tar.TypeSymlink:
		return u.symlink(name, hdr.Linkname)
	case tar.TypeLink:
		return fmt.Errorf("cache archive: %q is a hard link, which is not allowed", name)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return fmt.Errorf("cache archive: %q is a device or fifo, which is not allowed", name)
	}
	return fmt.Errorf("cache archive: %q has unsupported type %q", name, hdr.Typeflag)
}

// entryName checks an entry's name and returns it clean, without "./" or a trailing
// '/'. Any ".." segment is refused, even one that would stay inside.
func (u *unpacker) entryName(raw string) (string, error) {
	switch {
	case len(raw) > u.lim.MaxNameLen:
		return "", fmt.Errorf("cache archive: an entry name is longer than %d bytes", u.lim.MaxNameLen)
	case raw == "", strings.ContainsRune(raw, 0):
		return "", fmt.Errorf("cache archive: entry name %q is empty or holds NUL", raw)
	case strings.HasPrefix(raw, "/"):
		return "", fmt.Errorf("cache archive: entry name %q is absolute", raw)
	}
	for _, seg := range strings.Split(raw, "/") {
		if seg == ".." {
			return "", fmt.Errorf("cache archive: entry name %q holds \"..\"", raw)
		}
	}
	return path.Clean(raw), nil
}

// file writes a regular file at name, replacing what is there.
func (u *unpacker) file(name string, hdr *tar.Header, mode fs.FileMode, body io.Reader) error {
	if hdr.Size > u.lim.MaxBytes-u.st.Bytes {
		return fmt.Errorf("cache archive: %q takes it past %d bytes: %w", name, u.lim.MaxBytes, ErrTooLarge)
	}
	if err := u.parent(name); err != nil {
		return err
	}
	// O_EXCL: whatever is at name, even a symlink, fails the open rather than being
	// followed; it is removed and the open tried once more.
	f, err := u.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		if err = u.removeExisting(name); err == nil {
			f, err = u.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		}
	}
	if err != nil {
		return fmt.Errorf("restoring %q: %w", name, err)
	}
	// The struct hides the file's ReadFrom, which would copy through a 32 KiB buffer
	// of its own.
	n, err := io.CopyBuffer(struct{ io.Writer }{f}, body, u.buf)
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = u.root.Chtimes(name, hdr.ModTime, hdr.ModTime)
	}
	if err != nil {
		return fmt.Errorf("restoring %q: %w", name, err)
	}
	u.st.Files++
	u.st.Bytes += n
	return nil
}

// symlink creates a symlink at name, replacing what is there, if its target stays
// inside the root.
func (u *unpacker) symlink(name, target string) error {
	if len(target) > u.lim.MaxNameLen || !linkStaysInside(name, target) {
		return fmt.Errorf("cache archive: symlink %q -> %q leaves the workspace", name, target)
	}
	// linkStaysInside reads ".." from the link's name; that holds only if no
	// directory above it is a symlink.
	for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
		fi, err := u.root.Lstat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("restoring %q: %w", name, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("cache archive: symlink %q is under the symlink %q", name, dir)
		}
	}
	if err := u.parent(name); err != nil {
		return err
	}
	if err := u.removeExisting(name); err != nil {
		return err
	}
	if err := u.root.Symlink(target, name); err != nil {
		return fmt.Errorf("restoring %q: %w", name, err)
	}
	u.st.Symlinks++
	return nil
}

// parent makes sure name's parent directory exists. The directories it made or
// found are remembered, so a restore of many files walks each path once.
func (u *unpacker) parent(name string) error {
	dir := path.Dir(name)
	if dir == "." || u.made[dir] {
		return nil
	}
	if err := u.root.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("restoring %q: %w", name, err)
	}
	u.made[dir] = true
	return nil
}

// removeExisting removes what is at name, unless it is a directory, to make room for
// a file or symlink. Removing a symlink may change where names under it lead, so the
// directories parent remembered are forgotten.
func (u *unpacker) removeExisting(name string) error {
	fi, err := u.root.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("restoring %q: %w", name, err)
	case fi.IsDir():
		return fmt.Errorf("restoring %q: a directory is in the way", name)
	}
	if err := u.root.Remove(name); err != nil {
		return fmt.Errorf("restoring %q: %w", name, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		clear(u.made)
	}
	return nil
}

// finishDirs sets the directories' modes and mtimes, children before parents, after
// their content is written (writing into a directory changes its mtime).
func (u *unpacker) finishDirs() error {
	for i := len(u.dirs) - 1; i >= 0; i-- {
		d := u.dirs[i]
		if err := u.root.Chmod(d.name, d.mode); err != nil {
			return fmt.Errorf("restoring %q: %w", d.name, err)
		}
		if err := u.root.Chtimes(d.name, d.mtime, d.mtime); err != nil {
			return fmt.Errorf("restoring %q: %w", d.name, err)
		}
	}
	return nil
}

// limitReader reads at most n bytes from r and fails with ErrTooLarge, rather than
// ending, if r has more.
type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		// At the limit: only a true end of r is an end.
		var one [1]byte
		for range 100 {
			k, err := l.r.Read(one[:])
			if k > 0 {
				return 0, fmt.Errorf("cache archive: more than the limit of decompressed bytes: %w", ErrTooLarge)
			}
			if err != nil {
				return 0, err
			}
		}
		return 0, io.ErrNoProgress
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	k, err := l.r.Read(p)
	l.n -= int64(k)
	return k, err
}
