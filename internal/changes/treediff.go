package changes

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// errLimit stops a diff that exceeded Limits, or whose context ended; Between turns
// it into all=true.
var errLimit = errors.New("change limit exceeded")

// maxPathLen bounds one path: git itself refuses paths past PATH_MAX on checkout.
const maxPathLen = 4096

// differ lists the paths that differ between two trees. It walks the trees
// itself instead of calling object.DiffTree because DiffTree builds the whole
// change list before returning, so it cannot stop at MaxFiles, and it has no
// bound on the trees it reads. Subtrees with equal hashes are skipped, so the
// work is proportional to the change, not to the repository.
type differ struct {
	ctx       context.Context
	repo      *git.Repository
	limits    Limits
	trees     int
	entryRead int // tree entries decoded: a tree's cost is its width, not one
	pathBytes int // bytes of the paths listed
	files     []string
	seen      map[string]struct{}
}

// diff compares the trees from and to (either may be the zero hash, meaning
// absent) under the directory prefix dir ("" or ending in '/').
func (d *differ) diff(dir string, from, to plumbing.Hash) error {
	if from == to {
		return nil
	}
	fromEntries, err := d.entries(from)
	if err != nil {
		return err
	}
	toEntries, err := d.entries(to)
	if err != nil {
		return err
	}
	for name, a := range fromEntries {
		// A name missing from to yields the zero entry: absent.
		if err := d.entry(dir+name, a, toEntries[name]); err != nil {
			return err
		}
	}
	for name, b := range toEntries {
		if _, ok := fromEntries[name]; !ok {
			if err := d.entry(dir+name, object.TreeEntry{}, b); err != nil {
				return err
			}
		}
	}
	return nil
}

// entry compares one path's entries on both sides; a zero entry is absent. A
// side that is a directory is diffed against the other side's directory (or
// nothing), a side that is not a directory is the file at p.
func (d *differ) entry(p string, a, b object.TreeEntry) error {
	if len(p) > maxPathLen {
		return errLimit // a name of megabytes would be copied into every path below it
	}
	aDir, bDir := a.Mode == filemode.Dir, b.Mode == filemode.Dir
	aFile, bFile := !a.Hash.IsZero() && !aDir, !b.Hash.IsZero() && !bDir
	if aFile && bFile && a.Hash == b.Hash && a.Mode == b.Mode {
		return nil
	}
	if aFile || bFile {
		if err := d.add(p); err != nil {
			return err
		}
	}
	var fromTree, toTree plumbing.Hash
	if aDir {
		fromTree = a.Hash
	}
	if bDir {
		toTree = b.Hash
	}
	return d.diff(p+"/", fromTree, toTree)
}

// entries reads a tree's entries by name, counting the read against
// MaxTreesRead. The zero hash is the empty tree.
func (d *differ) entries(h plumbing.Hash) (map[string]object.TreeEntry, error) {
	if h.IsZero() {
		return nil, nil
	}
	d.trees++
	if d.trees > d.limits.MaxTreesRead || d.ctx.Err() != nil {
		return nil, errLimit
	}
	t, err := d.repo.TreeObject(h)
	if err != nil {
		return nil, fmt.Errorf("reading tree %s: %w", h, err)
	}
	if d.entryRead += len(t.Entries); d.entryRead > d.limits.MaxEntriesRead {
		return nil, errLimit
	}
	m := make(map[string]object.TreeEntry, len(t.Entries))
	for _, e := range t.Entries {
		m[e.Name] = e
	}
	return m, nil
}

// add records a changed path once: a hostile tree can spell one path twice,
// as an entry "a/b" beside a directory "a" holding "b".
func (d *differ) add(p string) error {
	if _, ok := d.seen[p]; ok {
		return nil
	}
	if d.pathBytes += len(p); len(d.files) >= d.limits.MaxFiles || d.pathBytes > d.limits.MaxPathBytes {
		return errLimit
	}
	d.seen[p] = struct{}{}
	d.files = append(d.files, p)
	return nil
}
