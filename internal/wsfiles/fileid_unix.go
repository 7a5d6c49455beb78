//go:build unix

package wsfiles

import (
	"io/fs"
	"syscall"
)

// dirID identifies a directory across the names it is reached by, so that a walk
// follows no symlinked directory into a place it has walked already.
type dirID struct{ dev, ino uint64 }

// idOf returns fi's identity, or false where the platform gives none.
func idOf(fi fs.FileInfo) (dirID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return dirID{}, false
	}
	// The conversions are for the platforms where Dev and Ino are other types.
	return dirID{dev: uint64(st.Dev), ino: uint64(st.Ino)}, true
}
