package changes

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
)

// store encodes o into repo and returns its hash.
func store(t *testing.T, repo *git.Repository, o interface {
	Encode(plumbing.EncodedObject) error
}) plumbing.Hash {
	t.Helper()
	enc := repo.Storer.NewEncodedObject()
	if err := o.Encode(enc); err != nil {
		t.Fatal(err)
	}
	h, err := repo.Storer.SetEncodedObject(enc)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func storeCommit(t *testing.T, repo *git.Repository, tree plumbing.Hash, parents ...plumbing.Hash) plumbing.Hash {
	t.Helper()
	sig := object.Signature{Name: "t", Email: "t@example.com", When: time.Unix(0, 0).UTC()}
	return store(t, repo, &object.Commit{Author: sig, Committer: sig, Message: "m", TreeHash: tree, ParentHashes: parents})
}

// TestBetweenHostileTrees covers trees no git client writes but a hostile push
// can carry: directories that share one subtree so that expanding them reads
// 2^depth trees without reaching a file, and two spellings of one path.
func TestBetweenHostileTrees(t *testing.T) {
	tests := []struct {
		name string
		// tree builds the head's tree; the base's tree is empty.
		tree func(t *testing.T, repo *git.Repository) plumbing.Hash
		want []string
		all  bool
	}{
		{name: "shared subtrees", all: true, tree: func(t *testing.T, repo *git.Repository) plumbing.Hash {
			h := store(t, repo, &object.Tree{}) // the empty tree
			for depth := 0; depth < 40; depth++ {
				h = store(t, repo, &object.Tree{Entries: []object.TreeEntry{
					{Name: "a", Mode: filemode.Dir, Hash: h},
					{Name: "b", Mode: filemode.Dir, Hash: h},
				}})
			}
			return h
		}},
		{name: "one path spelled twice", want: []string{"a/b"}, tree: func(t *testing.T, repo *git.Repository) plumbing.Hash {
			enc := repo.Storer.NewEncodedObject()
			enc.SetType(plumbing.BlobObject)
			blob, err := repo.Storer.SetEncodedObject(enc) // the empty blob
			if err != nil {
				t.Fatal(err)
			}
			sub := store(t, repo, &object.Tree{Entries: []object.TreeEntry{
				{Name: "b", Mode: filemode.Regular, Hash: blob},
			}})
			return store(t, repo, &object.Tree{Entries: []object.TreeEntry{
				{Name: "a", Mode: filemode.Dir, Hash: sub},
				{Name: "a/b", Mode: filemode.Regular, Hash: blob},
			}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo, err := git.Init(memory.NewStorage(), nil)
			if err != nil {
				t.Fatal(err)
			}
			base := storeCommit(t, repo, store(t, repo, &object.Tree{}))
			head := storeCommit(t, repo, tt.tree(t, repo), base)
			files, all, err := Between(context.Background(), repo, base, head, DefaultLimits())
			if err != nil {
				t.Fatalf("Between: %v", err)
			}
			if all != tt.all || !slices.Equal(files, tt.want) {
				t.Fatalf("Between = %q, all=%v; want %q, all=%v", files, all, tt.want, tt.all)
			}
		})
	}
}

// TestBetweenHostileWidthAndNames: a directory name of megabytes (which every path
// below it would copy) and trees too wide to decode in reasonable time end in all=true
// (everything counts as changed), as does a context that ended.
func TestBetweenHostileWidthAndNames(t *testing.T) {
	repo, err := git.Init(memory.NewStorage(), nil)
	if err != nil {
		t.Fatal(err)
	}
	blobEnc := repo.Storer.NewEncodedObject()
	blobEnc.SetType(plumbing.BlobObject)
	blob, err := repo.Storer.SetEncodedObject(blobEnc)
	if err != nil {
		t.Fatal(err)
	}
	base := storeCommit(t, repo, store(t, repo, &object.Tree{}))
	files := store(t, repo, &object.Tree{Entries: []object.TreeEntry{{Name: "f", Mode: filemode.Regular, Hash: blob}}})
	longName := storeCommit(t, repo, store(t, repo, &object.Tree{Entries: []object.TreeEntry{
		{Name: strings.Repeat("x", 8<<10), Mode: filemode.Dir, Hash: files}}}), base)
	var wide []object.TreeEntry
	for i := range 3000 {
		wide = append(wide, object.TreeEntry{Name: fmt.Sprintf("d%04d", i), Mode: filemode.Dir, Hash: files})
	}
	wideHead := storeCommit(t, repo, store(t, repo, &object.Tree{Entries: wide}), base)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tt := range []struct {
		name   string
		ctx    context.Context
		head   plumbing.Hash
		limits Limits
	}{
		{"a name longer than a path may be", context.Background(), longName, DefaultLimits()},
		{"wider than the entries budget", context.Background(), wideHead, Limits{MaxEntriesRead: 2000}},
		{"more path bytes than the budget", context.Background(), wideHead, Limits{MaxPathBytes: 1000}},
		{"the context ended", cancelled, wideHead, DefaultLimits()},
	} {
		files, all, err := Between(tt.ctx, repo, base, tt.head, tt.limits)
		if err != nil || !all || len(files) != 0 {
			t.Errorf("%s: %d files, all=%v, %v; want all", tt.name, len(files), all, err)
		}
	}
	if files, all, err := Between(context.Background(), repo, base, wideHead, DefaultLimits()); err != nil || all || len(files) != 3000 {
		t.Errorf("within the limits: %d files, all=%v, %v", len(files), all, err)
	}
}
