package wsfiles

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
)

// defaultHashBytes is HashFiles' read budget when it is given none.
const defaultHashBytes = 1 << 30

// HashFiles returns the hex SHA-256 of the regular files under root that patterns
// reach (as Collect finds them, without its file limit), in path order: for each, its
// path, NUL, its size in decimal, NUL, its content. matched is how many files went in;
// when none did it returns "" and 0 and no error. Reading more than maxBytes of
// content (1 GiB when maxBytes <= 0) is an error wrapping ErrTooLarge, and so is a
// walk cut short by a limit: a key over part of the files would not change when the
// rest did. Symlinks that leave root and other files Collect refuses are not part of
// the key.
func HashFiles(root string, patterns []string, maxBytes int64) (hex string, matched int, err error) {
	if maxBytes <= 0 {
		maxBytes = defaultHashBytes
	}
	lim := DefaultLimits()
	lim.MaxFiles = lim.MaxWalk // the walk's own bound is the one that matters
	res, truncated, err := collect(root, patterns, lim)
	if err != nil {
		return "", 0, err
	}
	if truncated {
		return "", 0, fmt.Errorf("hashing files: the patterns reach more than the walk's limits: %w", ErrTooLarge)
	}
	if len(res.Files) == 0 {
		return "", 0, nil
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return "", 0, fmt.Errorf("opening workspace: %w", err)
	}
	defer r.Close()
	h := sha256.New()
	left := maxBytes
	for _, file := range res.Files {
		n, err := hashOne(h, r, file.Path, left)
		if err != nil {
			return "", 0, err
		}
		left -= n
	}
	return fmt.Sprintf("%x", h.Sum(nil)), len(res.Files), nil
}

// hashOne writes one file's record to h, reading at most left bytes of content.
func hashOne(h io.Writer, r *os.Root, rel string, left int64) (int64, error) {
	f, fi, err := openRegular(r, rel)
	if err != nil {
		return 0, fmt.Errorf("hashing %q: %w", rel, err)
	}
	defer f.Close()
	if fi.Size() > left {
		return 0, fmt.Errorf("hashing %q: the files hold more than the limit of bytes: %w", rel, ErrTooLarge)
	}
	fmt.Fprintf(h, "%s\x00%d\x00", rel, fi.Size())
	n, err := io.Copy(h, io.LimitReader(f, fi.Size()))
	if err == nil && n < fi.Size() {
		err = errors.New("file shrank while it was hashed")
	}
	if err != nil {
		return 0, fmt.Errorf("hashing %q: %w", rel, err)
	}
	return n, nil
}
