// Package pathglob matches slash-separated repository paths against globs: the path
// filters of triggers and steps (internal/changes), and the files steps keep and caches
// hash (internal/wsfiles). It uses the standard library only, so that the small step
// wrapper that collects artifacts links nothing more.
//
// # Glob rules
//
// Globs match slash-separated repository paths such as "api/v1/x.go" (no leading
// slash, as git reports them). A glob is split at '/' into segments and each
// segment matches one path segment with path.Match semantics: '*' matches any run
// of characters, '?' one character, "[...]" a class ("[^...]" or, as in git,
// "[!...]" a negated one), and '\' escapes the next character. None of them ever
// crosses a '/'.
//
// A segment that is exactly "**" matches any number of whole path segments,
// including none: "docs/**" matches every file under docs, "**/*.md" every .md
// file at any depth, "a/**/b" matches "a/b" and "a/x/y/b".
//
// As in GitHub Actions, a glob is anchored at the repository root: "*.md" matches
// "README.md" but not "docs/x.md"; write "**/*.md" for any depth. A "**" inside a
// longer segment ("**.md", "a**") is just a '*' and does not cross '/'. This is
// stricter than GitHub, where "**.js" matches at any depth; "**/*.js" works in
// both.
//
// A glob matches files only, never a directory on its own: "docs" matches a file
// named docs, not the files under it.
package pathglob

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// Match reports whether file matches glob under the package's glob rules. A
// malformed glob matches nothing; check globs with ValidGlob when a pipeline is
// parsed so the mistake is reported instead of silently skipping work.
func Match(glob, file string) bool {
	if glob == "" || file == "" {
		return false
	}
	return matchSegments(strings.Split(glob, "/"), strings.Split(file, "/"))
}

// matchSegments matches glob segments against path segments. It fills a table
// from the end instead of recursing so that globs with several "**" stay
// O(len(g)*len(f)) rather than exponential in the number of "**".
func matchSegments(g, f []string) bool {
	// ok[i][j] reports whether g[i:] matches f[j:]; one row is kept per i.
	next := make([]bool, len(f)+1)
	next[len(f)] = true // the empty glob matches only the empty rest
	cur := make([]bool, len(f)+1)
	for i := len(g) - 1; i >= 0; i-- {
		for j := len(f); j >= 0; j-- {
			switch {
			case g[i] == "**":
				// Either "**" takes no segment (next[j]) or it takes f[j] and
				// stays available for more (cur[j+1]).
				cur[j] = next[j] || (j < len(f) && cur[j+1])
			case j == len(f):
				cur[j] = false
			default:
				ok, err := path.Match(segmentPattern(g[i]), f[j])
				cur[j] = err == nil && ok && next[j+1]
			}
		}
		next, cur = cur, next
	}
	return next[0]
}

// ValidGlob reports why glob is not usable as a path filter, or nil. It rejects
// what would otherwise silently match nothing: an empty glob, a leading or
// trailing '/' or an empty segment, "." and ".." segments (git never reports
// them), a malformed "[...]" class or dangling '\', and a leading '!' (negation is
// not supported; list the paths under ignorePaths instead, or write "\!" for a
// file whose name starts with '!').
func ValidGlob(glob string) error {
	switch {
	case glob == "":
		return errors.New("empty path glob")
	case strings.HasPrefix(glob, "/"):
		return fmt.Errorf("path glob %q starts with '/': globs are relative to the repository root", glob)
	case strings.HasSuffix(glob, "/"):
		return fmt.Errorf("path glob %q ends with '/': globs match files; write %q for everything under it", glob, glob+"**")
	case strings.HasPrefix(glob, "!"):
		return fmt.Errorf("path glob %q starts with '!': negation is not supported, use ignorePaths", glob)
	}
	for _, seg := range strings.Split(glob, "/") {
		switch seg {
		case "":
			return fmt.Errorf("path glob %q has an empty segment", glob)
		case ".", "..":
			return fmt.Errorf("path glob %q has a %q segment", glob, seg)
		}
		// path.Match checks the whole pattern even when the name does not match.
		if _, err := path.Match(segmentPattern(seg), ""); err != nil {
			return fmt.Errorf("path glob %q: malformed segment %q", glob, seg)
		}
	}
	return nil
}

// segmentPattern turns a git-style "[!...]" class into path.Match's "[^...]";
// path.Match would read the '!' as a member of the class.
func segmentPattern(seg string) string {
	if !strings.Contains(seg, "[!") {
		return seg
	}
	b := []byte(seg)
	inClass := false
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '\\':
			i++ // the escaped byte is literal, in a class or not
		case !inClass && b[i] == '[':
			inClass = true
			if i+1 < len(b) && b[i+1] == '!' {
				b[i+1] = '^'
				i++
			}
		case inClass && b[i] == ']':
			inClass = false
		}
	}
	return string(b)
}
