//go:build !unix

package wsfiles

import "io/fs"

// dirID identifies a directory across the names it is reached by.
type dirID struct{ dev, ino uint64 }

// idOf has no identity to give here; walks then follow no symlinked directory.
func idOf(fs.FileInfo) (dirID, bool) { return dirID{}, false }
