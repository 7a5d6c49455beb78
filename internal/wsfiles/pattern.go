package wsfiles

import (
	"fmt"
	"strings"

	"github.com/flow-ci/flow-ci/internal/pathglob"
)

// maxPatternLen bounds a pattern: a pipeline file is small, and the matcher's table
// grows with the number of segments.
const maxPatternLen = 512

// ValidatePattern reports what is wrong with p as an artifact or cache-key pattern, or
// nil. A pattern is a glob relative to the workspace root under the rules of
// internal/changes ('/'-separated, "**" spans directories), or "." for the whole
// workspace. Messages are short: the pipeline parser puts the line number before them.
func ValidatePattern(p string) error {
	if err := validatePath("pattern", p); err != nil {
		return err
	}
	if p == "." {
		return nil
	}
	if strings.HasPrefix(p, "!") {
		return fmt.Errorf("pattern %q: negation ('!') is not supported", p)
	}
	if pathglob.ValidGlob(p) != nil {
		// The only failure validatePath leaves to ValidGlob is the glob syntax.
		return fmt.Errorf("pattern %q: malformed glob", p)
	}
	return nil
}

// validateDir reports what is wrong with d as a cache directory: a path relative to
// the workspace under the same rules as a pattern, without glob characters.
func validateDir(d string) error {
	if err := validatePath("cache path", d); err != nil {
		return err
	}
	if strings.ContainsAny(d, "*?[") {
		return fmt.Errorf("cache path %q: glob characters are not allowed", d)
	}
	return nil
}

// validatePath checks what patterns and cache paths share: a relative, '/'-separated
// path with no way up. Backslashes are refused rather than read as separators or
// escapes, so that a path means the same thing to every reader of the pipeline.
func validatePath(kind, p string) error {
	switch {
	case p == "":
		return fmt.Errorf("empty %s", kind)
	case len(p) > maxPatternLen:
		return fmt.Errorf("%s longer than %d bytes", kind, maxPatternLen)
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("%s %q contains NUL", kind, p)
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("%s %q is absolute: write it relative to the workspace", kind, p)
	case strings.ContainsRune(p, '\\'):
		return fmt.Errorf("%s %q contains a backslash: '/' separates, '?' matches a special character", kind, p)
	case p == ".":
		return nil
	case strings.HasSuffix(p, "/"):
		return fmt.Errorf("%s %q ends with '/': write the directory without it", kind, p)
	}
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "":
			return fmt.Errorf("%s %q has an empty segment", kind, p)
		case "..":
			return fmt.Errorf("%s %q has a \"..\" segment", kind, p)
		case ".":
			return fmt.Errorf("%s %q has a \".\" segment", kind, p)
		}
	}
	return nil
}

// literalPrefix is the leading segments of a valid pattern that hold no glob
// character: the directory a walk for it can start from. all reports whether the whole
// pattern is literal.
func literalPrefix(p string) (prefix string, all bool) {
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		if strings.ContainsAny(seg, `*?[\`) {
			return strings.Join(segs[:i], "/"), false
		}
	}
	return p, true
}

// mayMatchBelow reports whether pattern could match a path under dir, so that a walk
// need not descend where nothing can match. It is exact while the pattern's first
// segments hold no "**" and errs towards descending once they do.
func mayMatchBelow(pattern, dir string) bool {
	if dir == "." {
		return true
	}
	g, d := strings.Split(pattern, "/"), strings.Split(dir, "/")
	if len(g) <= len(d) {
		// Only "**" can take the dir's segments and still leave something for a file.
		return strings.Contains(pattern, "**")
	}
	for _, seg := range g[:len(d)] {
		if seg == "**" {
			return true
		}
	}
	return pathglob.Match(strings.Join(g[:len(d)], "/"), dir)
}
