package wsfiles

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestHashFiles(t *testing.T) {
	spec := map[string]string{"go.sum": "sum", "a/go.sum": "other sum", "a/x.go": "package a", "out": "->../outside"}
	root, _ := workspace(t, spec)
	patterns := []string{"**/go.sum", "a/*.go", "out"}

	got, n, err := HashFiles(root, patterns, 0)
	if err != nil || n != 3 {
		t.Fatalf("HashFiles = %q, %d, %v", got, n, err)
	}
	// The format is a contract: keys made by one version must be made by the next.
	want := sha256.New()
	for _, p := range []string{"a/go.sum", "a/x.go", "go.sum"} {
		fmt.Fprintf(want, "%s\x00%d\x00%s", p, len(spec[p]), spec[p])
	}
	if w := fmt.Sprintf("%x", want.Sum(nil)); got != w {
		t.Errorf("HashFiles = %s, want %s", got, w)
	}

	again, _, _ := HashFiles(root, patterns, 0)
	reordered, _, _ := HashFiles(root, []string{"out", "a/*.go", "**/go.sum", "go.sum"}, 0)
	if again != got || reordered != got {
		t.Errorf("not stable: %s, again %s, reordered %s", got, again, reordered)
	}

	must(t, os.WriteFile(filepath.Join(root, "a/x.go"), []byte("package b"), 0o644))
	if changed, _, _ := HashFiles(root, patterns, 0); changed == got {
		t.Error("a changed byte left the hash as it was")
	}
	must(t, os.Rename(filepath.Join(root, "a/x.go"), filepath.Join(root, "a/y.go")))
	must(t, os.WriteFile(filepath.Join(root, "a/y.go"), []byte("package a"), 0o644))
	if renamed, _, _ := HashFiles(root, patterns, 0); renamed == got {
		t.Error("a renamed file left the hash as it was")
	}
}

func TestHashFilesBounds(t *testing.T) {
	root, _ := workspace(t, map[string]string{"a": "0123456789", "b": "0123456789"})
	tests := []struct {
		name     string
		patterns []string
		maxBytes int64
		wantN    int
		wantErr  error
	}{
		{"no match", []string{"*.lock"}, 0, 0, nil},
		{"within the budget", []string{"*"}, 20, 2, nil},
		{"past the budget", []string{"*"}, 19, 0, ErrTooLarge},
		{"bad pattern", []string{"../x"}, 0, 0, errAny},
	}
	for _, tt := range tests {
		h, n, err := HashFiles(root, tt.patterns, tt.maxBytes)
		switch {
		case tt.wantErr == errAny && err == nil, tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.wantErr)
		case n != tt.wantN, (n == 0) != (h == ""):
			t.Errorf("%s: HashFiles = %q, %d", tt.name, h, n)
		}
	}
}

var errAny = errors.New("any error")

// TestHashFilesRefusesPartialWalks: a key over part of the files would not change
// when the rest did.
func TestHashFilesRefusesPartialWalks(t *testing.T) {
	spec := map[string]string{}
	for i := range 300 {
		spec[fmt.Sprintf("d%d/f", i)] = "x"
	}
	root, _ := workspace(t, spec)
	if _, n, err := HashFiles(root, []string{"**"}, 0); err != nil || n != 300 {
		t.Fatalf("HashFiles = %d, %v", n, err)
	}
	tooDeep, _ := workspace(t, map[string]string{filepath.Join(longPath(70), "f"): "x"})
	if _, _, err := HashFiles(tooDeep, []string{"."}, 0); !errors.Is(err, ErrTooLarge) {
		t.Errorf("HashFiles past the depth limit = %v, want ErrTooLarge", err)
	}
}

func longPath(depth int) string {
	p := "d"
	for range depth - 1 {
		p += "/d"
	}
	return p
}
