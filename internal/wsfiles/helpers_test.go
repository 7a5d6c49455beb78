package wsfiles

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// tree builds files under dir from a spec: "path" -> content, where a content of
// "->target" makes a symlink, "/" a directory and "|fifo" a named pipe.
func tree(t testing.TB, dir string, spec map[string]string) {
	t.Helper()
	for name, content := range spec {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasPrefix(content, "->"):
			err = os.Symlink(strings.TrimPrefix(content, "->"), p)
		case content == "/":
			err = os.MkdirAll(p, 0o755)
		case content == "|fifo":
			err = syscall.Mkfifo(p, 0o644)
		default:
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// workspace is a temp dir holding a "ws" directory (the root) and a file beside it,
// "outside", that no function under test may reach.
func workspace(t testing.TB, spec map[string]string) (root, outside string) {
	t.Helper()
	dir := t.TempDir()
	root = filepath.Join(dir, "ws")
	outside = filepath.Join(dir, "outside")
	if err := os.WriteFile(outside, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	tree(t, root, spec)
	return root, outside
}
