package wsfiles

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/flow-ci/flow-ci/internal/pathglob"
)

// Limits bound what Collect visits. A zero field takes its default.
type Limits struct {
	// MaxFiles is how many files are kept; those past it, in path order, are refused.
	MaxFiles int
	// MaxWalk is how many directory entries are visited, over all patterns, before
	// the walk stops.
	MaxWalk int
	// MaxDepth is how many directory levels below the root a walk enters.
	MaxDepth int
}

// DefaultLimits are the limits for a step's artifacts.
func DefaultLimits() Limits { return Limits{MaxFiles: 1000, MaxWalk: 100_000, MaxDepth: 64} }

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxFiles <= 0 {
		l.MaxFiles = d.MaxFiles
	}
	if l.MaxWalk <= 0 {
		l.MaxWalk = d.MaxWalk
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	return l
}

// File is a regular file Collect kept.
type File struct {
	Path string // relative to the root, clean, '/'-separated
	Size int64
}

// Refused is a path a pattern reached that Collect did not keep, and why.
type Refused struct {
	Path   string
	Reason string
}

// Result is what Collect found.
type Result struct {
	Files     []File    // sorted by Path, each once
	Refused   []Refused // sorted by Path, each once
	Unmatched []string  // the patterns that reached nothing, in their given order
}

// Collect finds the regular files under root that patterns name (see ValidatePattern):
// the files a pattern matches, and every regular file under a directory it matches or
// names. Every access goes through an os.Root, so no name or symlink leads out of
// root: a symlink is followed only while it stays inside, and one that leaves is
// refused with its reason, as are devices, fifos and sockets. Each directory is
// walked at most once per pattern, under the first name the sorted walk reaches it
// by, so symlinks cannot loop a walk or repeat one. Collect reads no file's content.
// It returns an error only for an invalid pattern or an unusable root.
func Collect(root string, patterns []string, lim Limits) (Result, error) {
	res, _, err := collect(root, patterns, lim)
	return res, err
}

// collect is Collect, and also reports whether a limit left out files the patterns
// reach (MaxFiles, MaxWalk or MaxDepth).
func collect(root string, patterns []string, lim Limits) (Result, bool, error) {
	for _, p := range patterns {
		if err := ValidatePattern(p); err != nil {
			return Result{}, false, err
		}
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return Result{}, false, fmt.Errorf("opening workspace: %w", err)
	}
	defer r.Close()
	w := &walker{root: r, lim: lim.withDefaults(), files: map[string]int64{}, refused: map[string]string{}}
	var unmatched []string
	for _, p := range patterns {
		if !w.collect(p) {
			unmatched = append(unmatched, p)
		}
	}
	res := w.result(unmatched)
	return res, w.truncated, nil
}

// walker is one Collect's state. The walk budget is shared by all patterns; hits and
// walked are per pattern, so that one pattern's walk does not hide files from another.
type walker struct {
	root    *os.Root
	lim     Limits
	visited int  // directory entries read
	stopped bool // the walk budget ran out
	// truncated is set when a limit left something out.
	truncated bool
	files     map[string]int64
	refused   map[string]string

	hits   int            // files and refusals the current pattern reached
	walked map[dirID]bool // directories the current pattern entered
}

// collect adds what pattern p reaches and reports whether it reached anything.
func (w *walker) collect(p string) bool {
	w.hits, w.walked = 0, map[dirID]bool{}
	prefix, literal := literalPrefix(p)
	if literal {
		w.take(p)
		return w.hits > 0
	}
	if prefix == "" {
		prefix = "."
	}
	fi, link, reason := w.stat(prefix)
	if reason != "" {
		w.refuse(prefix, reason)
	} else if fi != nil && fi.IsDir() {
		w.walk(prefix, fi, link, p)
	}
	return w.hits > 0
}

// take keeps what rel names: a regular file, or every regular file under a directory.
func (w *walker) take(rel string) {
	fi, link, reason := w.stat(rel)
	switch {
	case reason != "":
		w.refuse(rel, reason)
	case fi == nil: // nothing there
	case fi.Mode().IsRegular():
		w.hits++
		w.files[rel] = fi.Size()
	case fi.IsDir():
		w.walk(rel, fi, link, "")
	default:
		w.refuse(rel, irregularReason(fi.Mode()))
	}
}

// walk visits dir's entries in name order. With a pattern it takes the entries the
// pattern matches and descends where it may match further down; without one
// (pattern "") it takes every entry.
func (w *walker) walk(dir string, fi fs.FileInfo, link bool, pattern string) {
	if !w.enter(dir, fi, link, pattern == "") {
		return
	}
	for _, name := range w.readDir(dir) {
		if w.stopped {
			return
		}
		rel := path.Join(dir, name)
		if pattern == "" || pathglob.Match(pattern, rel) {
			w.take(rel)
			continue
		}
		if !mayMatchBelow(pattern, rel) {
			continue
		}
		// Only a directory can hold a match; what it cannot reach is not reported,
		// since the pattern did not name it.
		if fi, link, reason := w.stat(rel); reason == "" && fi != nil && fi.IsDir() {
			w.walk(rel, fi, link, pattern)
		}
	}
}

// enter reports whether the walk may enter dir: not below the depth limit, and not a
// directory the current pattern entered already, which only a symlink (or a bind
// mount) leads back to: so a link to an ancestor cannot loop and an alias is walked
// once. A directory the pattern took whole is reported when it is not entered; one
// a glob only searched through is not. Where the platform gives no identity,
// symlinked directories are not entered at all.
func (w *walker) enter(dir string, fi fs.FileInfo, link, named bool) bool {
	if dir != "." && strings.Count(dir, "/")+1 >= w.lim.MaxDepth {
		w.refuse(dir, reasonTooDeep)
		w.truncated = true
		return false
	}
	id, ok := idOf(fi)
	if (link && !ok) || (ok && w.walked[id]) {
		if named {
			w.refuse(dir, reasonWalked)
		}
		return false
	}
	if ok {
		w.walked[id] = true
	}
	return true
}

// readDir returns dir's entry names sorted, counting them against the walk budget.
// O_NONBLOCK keeps a fifo put in the directory's place from blocking the open.
func (w *walker) readDir(dir string) []string {
	f, err := w.root.OpenFile(dir, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		w.refuse(dir, reasonUnread)
		return nil
	}
	defer f.Close()
	var names []string
	for {
		batch, err := f.ReadDir(256)
		w.visited += len(batch)
		if w.visited > w.lim.MaxWalk {
			w.stopped, w.truncated = true, true
			w.refuse(dir, fmt.Sprintf("walk stopped after %d entries", w.lim.MaxWalk))
			return nil
		}
		for _, e := range batch {
			names = append(names, e.Name())
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				w.refuse(dir, reasonUnread)
			}
			break
		}
	}
	slices.Sort(names)
	return names
}

// stat returns what rel is, following a symlink at rel through the root. reason is
// set when rel cannot be used; fi is nil when nothing is there.
func (w *walker) stat(rel string) (fi fs.FileInfo, link bool, reason string) {
	fi, err := w.root.Lstat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, false, ""
	case escapes(err):
		return nil, false, reasonLeaves // a symlinked directory on the way leaves
	case err != nil:
		return nil, false, reasonUnread
	case fi.Mode()&fs.ModeSymlink == 0:
		return fi, false, ""
	}
	target, _ := w.root.Readlink(rel)
	tfi, err := w.root.Stat(rel)
	if err != nil {
		return nil, true, symlinkReason(rel, target, err)
	}
	return tfi, true, ""
}

func (w *walker) refuse(rel, reason string) {
	w.hits++
	if _, ok := w.refused[rel]; !ok {
		w.refused[rel] = reason
	}
}

// result sorts what the walk kept and refuses the files past MaxFiles.
func (w *walker) result(unmatched []string) Result {
	res := Result{Unmatched: unmatched}
	for p, size := range w.files {
		res.Files = append(res.Files, File{Path: p, Size: size})
	}
	sort.Slice(res.Files, func(i, j int) bool { return res.Files[i].Path < res.Files[j].Path })
	if len(res.Files) > w.lim.MaxFiles {
		for _, f := range res.Files[w.lim.MaxFiles:] {
			w.refused[f.Path] = fmt.Sprintf("more than %d files", w.lim.MaxFiles)
		}
		res.Files = res.Files[:w.lim.MaxFiles]
		w.truncated = true
	}
	for p, why := range w.refused {
		res.Refused = append(res.Refused, Refused{Path: p, Reason: why})
	}
	sort.Slice(res.Refused, func(i, j int) bool { return res.Refused[i].Path < res.Refused[j].Path })
	return res
}
