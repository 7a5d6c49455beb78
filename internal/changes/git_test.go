package changes

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

func TestBetween(t *testing.T) {
	linearFiles := []string{"docs/r.md", "src/x.go", "src/y.go"}
	tests := []struct {
		name   string
		build  scenario
		limits Limits
		want   []string
		all    bool
	}{
		{name: "linear", build: linear, want: linearFiles},
		{name: "merge", build: merged, want: []string{"feat/f.go"}},
		{name: "same commit", build: onLinear(func(_ *fixture, _, head plumbing.Hash) (plumbing.Hash, plumbing.Hash) {
			return head, head
		})},
		{name: "empty commit", build: onLinear(func(f *fixture, _, head plumbing.Hash) (plumbing.Hash, plumbing.Hash) {
			return head, f.commit("empty")
		})},
		{name: "rename", build: renamed, want: []string{"new/a.txt", "old/a.txt"}},
		{name: "delete a directory", build: deletedDir, want: []string{"d/a", "d/e/b"}},
		{name: "mode change", build: modeChanged, want: []string{"run.sh"}},
		{name: "file becomes a directory", build: fileToDir, want: []string{"x", "x/y"}},
		{name: "force push", build: forcePushed, all: true},
		{name: "head behind base", all: true, build: onLinear(func(_ *fixture, base, head plumbing.Hash) (plumbing.Hash, plumbing.Hash) {
			return head, base
		})},
		{name: "missing base", all: true, build: onLinear(func(_ *fixture, _, head plumbing.Hash) (plumbing.Hash, plumbing.Hash) {
			return plumbing.NewHash(strings.Repeat("ab", 20)), head
		})},
		{name: "base is a tree", all: true, build: onLinear(func(f *fixture, _, head plumbing.Hash) (plumbing.Hash, plumbing.Hash) {
			return plumbing.NewHash(f.git("rev-parse", "HEAD^{tree}")), head
		})},
		{name: "zero base", all: true, build: onLinear(func(_ *fixture, _, head plumbing.Hash) (plumbing.Hash, plumbing.Hash) {
			return plumbing.ZeroHash, head
		})},
		{name: "at MaxFiles", build: linear, limits: Limits{MaxFiles: 3}, want: linearFiles},
		{name: "past MaxFiles", build: linear, limits: Limits{MaxFiles: 2}, all: true},
		// linear's head is two commits past base: the walk reads head and its
		// parent, then finds base.
		{name: "at MaxCommitsWalked", build: linear, limits: Limits{MaxCommitsWalked: 2}, want: linearFiles},
		{name: "past MaxCommitsWalked", build: linear, limits: Limits{MaxCommitsWalked: 1}, all: true},
		// linear's diff reads the root, src and docs trees: five reads.
		{name: "at MaxTreesRead", build: linear, limits: Limits{MaxTreesRead: 5}, want: linearFiles},
		{name: "past MaxTreesRead", build: linear, limits: Limits{MaxTreesRead: 4}, all: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			base, head := tt.build(f)
			repo := f.open()
			files, all, err := Between(context.Background(), repo, base, head, tt.limits)
			if err != nil {
				t.Fatalf("Between: %v", err)
			}
			if all != tt.all || !slices.Equal(files, tt.want) {
				t.Fatalf("Between = %q, all=%v; want %q, all=%v", files, all, tt.want, tt.all)
			}
			if !all {
				if ref := diffTreeNames(t, repo, base, head); !slices.Equal(files, ref) {
					t.Errorf("object.DiffTree lists %q, Between %q", ref, files)
				}
			}
		})
	}
}

// diffTreeNames is go-git's own tree diff, the reference the walker must agree
// with wherever no limit applies.
func diffTreeNames(t *testing.T, repo *git.Repository, base, head plumbing.Hash) []string {
	t.Helper()
	tree := func(h plumbing.Hash) *object.Tree {
		c, err := repo.CommitObject(h)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := c.Tree()
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	changes, err := object.DiffTree(tree(base), tree(head))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range changes {
		for _, n := range []string{c.From.Name, c.To.Name} {
			if n != "" && !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	return names
}

func TestBetweenMissingHead(t *testing.T) {
	f := newFixture(t)
	base, _ := linear(f)
	_, _, err := Between(context.Background(), f.open(), base, plumbing.NewHash(strings.Repeat("cd", 20)), Limits{})
	if err == nil {
		t.Fatal("Between with a missing head: no error")
	}
}
