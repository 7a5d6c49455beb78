// Package changes decides whether a pipeline's path filter lets a push or pull
// request run: it computes the files a change touches with go-git and matches them
// against the filter's globs (internal/pathglob).
package changes

import (
	"errors"
	"fmt"
	"strings"

	"github.com/flow-ci/flow-ci/internal/pathglob"
)

// Filter is a pipeline's path filter. A changed file counts if it matches some
// Paths glob (any file, when Paths is empty) and no IgnorePaths glob.
type Filter struct {
	Paths       []string
	IgnorePaths []string
}

// Validate checks every glob with ValidGlob and joins the errors, so a pipeline
// author sees all bad globs at once.
func (f Filter) Validate() error {
	var errs []error
	for _, g := range f.Paths {
		if err := pathglob.ValidGlob(g); err != nil {
			errs = append(errs, fmt.Errorf("paths: %w", err))
		}
	}
	for _, g := range f.IgnorePaths {
		if err := pathglob.ValidGlob(g); err != nil {
			errs = append(errs, fmt.Errorf("ignorePaths: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Decide reports whether a change touching changed lets the pipeline run, and a
// short reason for a status message. all means there was nothing to compare with
// (see Between), so every file counts as changed and the pipeline runs whatever
// the filter says. An empty change set (an empty commit) does not run.
func (f Filter) Decide(changed []string, all bool) (run bool, why string) {
	if all {
		return true, "no base commit to compare with; every file counts as changed"
	}
	if len(changed) == 0 {
		return false, "no files changed"
	}
	matchedPaths := false
	for _, file := range changed {
		if len(f.Paths) > 0 && !anyMatch(f.Paths, file) {
			continue
		}
		matchedPaths = true
		if anyMatch(f.IgnorePaths, file) {
			continue
		}
		if len(f.Paths) > 0 {
			return true, file + " matches paths"
		}
		if len(f.IgnorePaths) > 0 {
			return true, file + " does not match ignorePaths"
		}
		return true, file + " changed"
	}
	switch {
	case !matchedPaths:
		return false, "no changed file matches paths " + list(f.Paths)
	case len(f.Paths) > 0:
		return false, "every changed file matching paths " + list(f.Paths) +
			" matches ignorePaths " + list(f.IgnorePaths)
	default:
		return false, "every changed file matches ignorePaths " + list(f.IgnorePaths)
	}
}

func anyMatch(globs []string, file string) bool {
	for _, g := range globs {
		if pathglob.Match(g, file) {
			return true
		}
	}
	return false
}

// list formats globs as "[a b]" like fmt's %v, the form users see in their YAML.
func list(globs []string) string {
	return "[" + strings.Join(globs, " ") + "]"
}
