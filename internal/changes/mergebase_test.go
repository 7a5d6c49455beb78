package changes

import (
	"context"
	"slices"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

func TestMergeBase(t *testing.T) {
	tests := []struct {
		name string
		// build returns a pull request's head and target and the expected base.
		build func(f *fixture) (head, target, want plumbing.Hash)
		ok    bool
		files []string // Between(merge base, head)
	}{
		{name: "pull request", ok: true, files: []string{"feat/a.go", "feat/b.go"},
			build: func(f *fixture) (plumbing.Hash, plumbing.Hash, plumbing.Hash) {
				f.write("a.txt", "a")
				fork := f.commit("one")
				f.git("checkout", "-q", "-b", "pr")
				f.write("feat/a.go", "a")
				f.commit("pr one")
				f.write("feat/b.go", "b")
				head := f.commit("pr two")
				f.git("checkout", "-q", "main")
				f.write("main.go", "m")
				return head, f.commit("main moves on"), fork
			}},
		{name: "target not moved", ok: true, files: []string{"feat/a.go"},
			build: func(f *fixture) (plumbing.Hash, plumbing.Hash, plumbing.Hash) {
				f.write("a.txt", "a")
				fork := f.commit("one")
				f.write("feat/a.go", "a")
				return f.commit("pr"), fork, fork
			}},
		{name: "unrelated histories", ok: false,
			build: func(f *fixture) (plumbing.Hash, plumbing.Hash, plumbing.Hash) {
				f.write("a.txt", "a")
				target := f.commit("one")
				f.git("checkout", "-q", "--orphan", "other")
				f.write("b.txt", "b")
				return f.commit("orphan"), target, plumbing.ZeroHash
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			head, target, want := tt.build(f)
			repo := f.open()
			got, ok, err := MergeBase(repo, head, target)
			if err != nil {
				t.Fatalf("MergeBase: %v", err)
			}
			if got != want || ok != tt.ok {
				t.Fatalf("MergeBase = %s, %v; want %s, %v", got, ok, want, tt.ok)
			}
			if !ok {
				return
			}
			files, all, err := Between(context.Background(), repo, got, head, DefaultLimits())
			if err != nil || all || !slices.Equal(files, tt.files) {
				t.Errorf("Between(merge base, head) = %q, all=%v, %v; want %q", files, all, err, tt.files)
			}
		})
	}
}

func TestMergeBaseMissingCommit(t *testing.T) {
	f := newFixture(t)
	_, head := linear(f)
	if _, _, err := MergeBase(f.open(), head, plumbing.NewHash("0123456789012345678901234567890123456789")); err == nil {
		t.Fatal("MergeBase with a missing commit: no error")
	}
}
