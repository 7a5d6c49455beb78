package wsfiles

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
)

// Reasons given in Result.Refused. They are short: a step's log shows them.
const (
	reasonLeaves    = "a symlink that leaves the workspace"
	reasonDangling  = "a symlink to nothing"
	reasonLinkLoop  = "a symlink loop"
	reasonWalked    = "a directory walked already under another name"
	reasonUnfollow  = "a symlink that cannot be followed"
	reasonUnread    = "cannot be read"
	reasonTooDeep   = "deeper than the depth limit"
	reasonDevice    = "a device, not a regular file"
	reasonFifo      = "a fifo, not a regular file"
	reasonSocket    = "a socket, not a regular file"
	reasonIrregular = "not a regular file"
)

// linkStaysInside reports whether a symlink named name (a clean path relative to the
// root, whose parent directories are real directories) with the given target points
// inside the root, judged from the strings alone. Targets must be relative, and ".."
// may only lead: "../../x" is judged exactly, while in "x/../y" the ".." would climb
// from wherever the symlink x leads, which a string cannot tell, so it is refused.
func linkStaysInside(name, target string) bool {
	if target == "" || strings.HasPrefix(target, "/") || strings.ContainsRune(target, 0) {
		return false
	}
	depth := strings.Count(name, "/") // the directories above the link
	named := false
	for _, seg := range strings.Split(target, "/") {
		switch seg {
		case "", ".":
		case "..":
			if named || depth == 0 {
				return false
			}
			depth--
		default:
			named = true
		}
	}
	return true
}

// symlinkReason says why a symlink at rel could not be followed: err is what the
// root's Stat returned for it and target what it points to ("" if unreadable).
func symlinkReason(rel, target string, err error) string {
	switch {
	case escapes(err):
		return reasonLeaves
	case strings.HasPrefix(target, "/"), climbsOut(rel, target):
		return reasonLeaves // a dangling one, too: it would leave if it led anywhere
	case errors.Is(err, fs.ErrNotExist):
		return reasonDangling
	case errors.Is(err, syscall.ELOOP):
		return reasonLinkLoop
	}
	return reasonUnfollow
}

// climbsOut reports whether target, read from rel's directory as if no symlink were
// on the way, climbs above the root.
func climbsOut(rel, target string) bool {
	p := path.Join(path.Dir(rel), target)
	return p == ".." || strings.HasPrefix(p, "../")
}

// escapes reports whether err is os.Root refusing a path that leaves it. The os
// package exports no sentinel for it, so its message is compared; should the message
// change, such symlinks are still refused, with reasonUnfollow.
func escapes(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && pe.Err != nil && pe.Err.Error() == "path escapes from parent"
}

// irregularReason names what a non-regular, non-directory, non-symlink file is.
func irregularReason(m fs.FileMode) string {
	switch {
	case m&(fs.ModeDevice|fs.ModeCharDevice) != 0:
		return reasonDevice
	case m&fs.ModeNamedPipe != 0:
		return reasonFifo
	case m&fs.ModeSocket != 0:
		return reasonSocket
	}
	return reasonIrregular
}

// openRegular opens rel through root for reading and returns it only if it is a
// regular file. O_NONBLOCK keeps the open of a fifo put in the file's place since it
// was listed from waiting for a writer; regular files ignore the flag.
func openRegular(root *os.Root, rel string) (*os.File, fs.FileInfo, error) {
	f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, &fs.PathError{Op: "open", Path: rel, Err: errors.New(irregularReason(fi.Mode()))}
	}
	return f, fi, nil
}
