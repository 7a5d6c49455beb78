package wsfiles

import (
	"fmt"
	"os"
	"path"
	"strings"
)

// Open opens rel, a path Collect returned, under root for reading, through an os.Root:
// a symlink swapped in since Collect cannot lead out of root, and anything but a
// regular file is refused. The caller closes the file.
func Open(root, rel string) (*os.File, os.FileInfo, error) {
	if !isLocal(rel) {
		return nil, nil, fmt.Errorf("opening %q: not a clean path inside the workspace", rel)
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, nil, fmt.Errorf("opening workspace: %w", err)
	}
	defer r.Close() // the file keeps its own descriptor
	f, fi, err := openRegular(r, rel)
	if err != nil {
		return nil, nil, fmt.Errorf("opening %q: %w", rel, err)
	}
	return f, fi, nil
}

// isLocal reports whether rel is a clean, '/'-separated path below the root: what
// Collect returns and what an archive entry may be named. Unlike a pattern, it may hold
// any other byte, as file names on Linux do.
func isLocal(rel string) bool {
	return rel != "" && rel != "." && path.Clean(rel) == rel && !strings.HasPrefix(rel, "/") &&
		rel != ".." && !strings.HasPrefix(rel, "../") && !strings.ContainsRune(rel, 0)
}
