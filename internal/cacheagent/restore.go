package cacheagent

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/flow-ci/flow-ci/internal/wsfiles"
)

// stageDir is where an entry is unpacked before its directories move into place, and
// stateFile what the restore leaves for the save: both in the workspace, beside the
// checkout.
const (
	stageDir  = ".flowci-restore"
	stateFile = ".flowci-caches.json"
)

// state is what a restore found of each cache, for the save to tell whether it changed.
type state map[string]restored

type restored struct {
	Key      string `json:"key"`
	Restored string `json:"restored,omitempty"`
	Manifest string `json:"manifest,omitempty"`
}

// Restore restores each cache into the workspace ws (the checkout is ws/src) from the
// newest entry the archive finds for its key, and reports what it did. An entry is
// unpacked aside (wsfiles.Unpack, bounded) and only the cache's own directories move
// into place, so an entry can never write anywhere else in the workspace; a directory
// the checkout already has is left as it is. One cache's failure is reported and never
// fails the clone: a run without its cache is slower, not wrong.
func Restore(ctx context.Context, c *Client, specs []Spec, ws, defaultBranch string, lim wsfiles.UnpackLimits) []Report {
	out := make([]Report, 0, len(specs))
	st := state{}
	for _, s := range specs {
		r, got := restoreOne(ctx, c, s, ws, defaultBranch, lim)
		out = append(out, r)
		st[s.Name] = got
	}
	b, _ := json.Marshal(st) // strings only
	_ = os.WriteFile(filepath.Join(ws, stateFile), b, 0o644)
	_ = removeAll(filepath.Join(ws, stageDir))
	return out
}

func restoreOne(ctx context.Context, c *Client, s Spec, ws, def string, lim wsfiles.UnpackLimits) (Report, restored) {
	start := time.Now()
	rep := Report{Name: s.Name}
	key, err := Key(filepath.Join(ws, "src"), s)
	if err != nil {
		rep.Message = "not restored: its key: " + err.Error()
		return rep, restored{}
	}
	rep.Key = key
	got := restored{Key: key}
	if c == nil {
		rep.Message = "not restored: this cluster's flow-ci has no archive"
		return rep, got
	}
	e, err := c.get(ctx, s, key, def)
	switch {
	case errors.Is(err, errMiss):
		rep.Message = "no entry matches its key or restore keys"
		return rep, got
	case err != nil:
		rep.Message = "not restored: " + err.Error()
		return rep, got
	}
	defer e.body.Close()
	stage := filepath.Join(ws, stageDir, s.Name)
	_ = removeAll(stage)
	if err := os.MkdirAll(stage, 0o755); err == nil {
		_, err = wsfiles.Unpack(e.body, stage, lim)
	}
	if err == nil {
		err = place(ws, s)
	}
	if err != nil {
		rep.Message = "not restored: " + err.Error()
		return rep, got
	}
	rep.RestoredKey, rep.RestoredFrom, rep.RestoredBytes, rep.RestoreTime = e.key, e.branch, e.size, since(start)
	got.Restored, got.Manifest = e.key, manifest(ws, s.Dirs)
	return rep, got
}

// place moves the cache's directories from the stage into the workspace, through the
// workspace as a root: no symlink in the checkout leads the move out of it.
func place(ws string, s Spec) error {
	root, err := os.OpenRoot(ws)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, d := range s.Dirs {
		from := path.Join(stageDir, s.Name, d)
		if _, err := root.Lstat(from); err != nil {
			continue // the entry does not hold it
		}
		if _, err := root.Lstat(d); err == nil {
			continue // the checkout has it: the checkout wins
		}
		if dir := path.Dir(d); dir != "." {
			if err := root.MkdirAll(dir, 0o755); err != nil {
				return err
			}
		}
		if err := root.Rename(from, d); err != nil {
			return err
		}
	}
	return nil
}

// removeAll removes dir even where a cache made directories read-only (Go's module
// cache does).
func removeAll(dir string) error {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
