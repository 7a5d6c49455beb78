package cacheagent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/flow-ci/flow-ci/internal/wsfiles"
)

// Save saves each cache of the workspace ws that changed since its restore, under the
// key its restore computed (the files it hashed may have changed since), and reports
// what it did. An entry is packed to a file in the workspace first, so that its size is
// known and the archive stores it whole or not at all. A failure is reported, never
// fatal: the archive keeps the previous entry.
func Save(ctx context.Context, c *Client, specs []Spec, ws string, lim wsfiles.PackLimits) []Report {
	st := readState(ws)
	out := make([]Report, 0, len(specs))
	for _, s := range specs {
		out = append(out, saveOne(ctx, c, s, ws, st[s.Name], lim))
	}
	return out
}

func saveOne(ctx context.Context, c *Client, s Spec, ws string, before restored, lim wsfiles.PackLimits) Report {
	start := time.Now()
	rep := Report{Name: s.Name, Key: before.Key, RestoredKey: before.Restored}
	if !keyText.MatchString(rep.Key) { // none, or not one a restore computed
		key, err := Key(filepath.Join(ws, "src"), s)
		if err != nil {
			rep.Message = "not saved: its key: " + err.Error()
			return rep
		}
		rep.Key = key
	}
	if before.Restored == rep.Key && before.Manifest != "" && before.Manifest == manifest(ws, s.Dirs) {
		rep.Message = "unchanged since its restore: not saved"
		return rep
	}
	tmp := filepath.Join(ws, ".flowci-save-"+s.Name+".tar.zst")
	defer os.Remove(tmp)
	size, err := pack(tmp, ws, s.Dirs, lim)
	if err == nil {
		var f *os.File
		if f, err = os.Open(tmp); err == nil {
			err = c.put(ctx, s.Name, rep.Key, f, size)
			f.Close()
		}
	}
	if err != nil {
		rep.Message = "not saved: " + err.Error()
		return rep
	}
	rep.Saved, rep.SavedBytes, rep.SaveTime = true, size, since(start)
	return rep
}

func pack(tmp, ws string, dirs []string, lim wsfiles.PackLimits) (int64, error) {
	// A new file, never one a step left there (a symlink, a fifo).
	_ = os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	stats, err := wsfiles.Pack(f, ws, dirs, lim)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && stats.Files+stats.Dirs+stats.Symlinks == 0 {
		err = fmt.Errorf("its directories are empty or missing")
	}
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(tmp)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// maxManifestEntries bounds the walk of manifest; a cache past it counts as changed.
const maxManifestEntries = 2_000_000

// manifest digests the names, sizes, modes and mtimes under dirs (not their contents):
// enough to tell that a cache changed, at the cost of a walk, which follows no symlink
// below each directory.
func manifest(ws string, dirs []string) string {
	h := sha256.New()
	n := 0
	for _, d := range dirs {
		_ = filepath.WalkDir(filepath.Join(ws, d), func(p string, e fs.DirEntry, err error) error {
			if n++; n > maxManifestEntries {
				fmt.Fprintf(h, "cut at %d entries %d\n", maxManifestEntries, time.Now().UnixNano())
				return fs.SkipAll
			}
			if err != nil {
				return nil
			}
			if info, err := e.Info(); err == nil {
				fmt.Fprintf(h, "%s\x00%d\x00%o\x00%d\n", p, info.Size(), info.Mode(), info.ModTime().UnixNano())
			}
			return nil
		})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// maxStateBytes bounds the state file: a step can replace it with anything.
const maxStateBytes = 64 << 10

// readState reads what the restore left, through the workspace as a root and at most
// maxStateBytes: the steps ran since and may have replaced it (a symlink, /dev/zero, a
// fifo). What it says only decides whether a cache counts as unchanged; the key it names
// must look like one.
func readState(ws string) state {
	st := state{}
	root, err := os.OpenRoot(ws)
	if err != nil {
		return st
	}
	defer root.Close()
	if fi, err := root.Lstat(stateFile); err != nil || !fi.Mode().IsRegular() || fi.Size() > maxStateBytes {
		return st
	}
	f, err := root.Open(stateFile)
	if err != nil {
		return st
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, maxStateBytes))
	_ = json.Unmarshal(b, &st) // a bad state saves everything
	return st
}
