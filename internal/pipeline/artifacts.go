package pipeline

import (
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/flow-ci/flow-ci/internal/pathglob"
)

// Values of Artifacts.When: which ends of a step keep its artifacts.
const (
	KeepOnSuccess = "on_success"
	KeepOnFailure = "on_failure"
	KeepAlways    = "always"
)

// maxArtifactPaths bounds the globs of one step's artifacts, as when.changes.
const maxArtifactPaths = 20

// Artifacts are the files a step keeps in the archive once it ends.
type Artifacts struct {
	// Paths are globs (internal/pathglob) relative to the repository root; a glob
	// that matches a directory keeps every file under it.
	Paths []string
	// When is KeepOnSuccess (the default), KeepOnFailure or KeepAlways.
	When string
	// Line is where the file declares them.
	Line int
}

// Keeps says whether a step that ended with exit code exit keeps its artifacts.
func (a *Artifacts) Keeps(exit int) bool {
	if a == nil || len(a.Paths) == 0 {
		return false
	}
	switch a.When {
	case KeepAlways:
		return true
	case KeepOnFailure:
		return exit != 0
	default:
		return exit == 0
	}
}

// artifacts converts a step's artifacts, a list of globs or a mapping:
//
//	artifacts: [bin/app]
//	artifacts:
//	  paths: [dist/**]
//	  when: always
func (v *validator) artifacts(n *yaml.Node, ap string) *Artifacts {
	if isNull(n) {
		return nil
	}
	a := &Artifacts{When: KeepOnSuccess, Line: n.Line}
	paths, pp := n, ap
	if n.Kind == yaml.MappingNode {
		f, ok := v.fields(n, ap, []string{"paths", "when"})
		if !ok {
			return nil
		}
		if wn := f["when"]; wn != nil {
			if s, ok := v.text(wn, ap+".when"); ok {
				if s != KeepOnSuccess && s != KeepOnFailure && s != KeepAlways {
					v.add(wn, ap+".when", "must be on_success, on_failure or always, got %s", quote(s))
				}
				a.When = s
			}
		}
		paths, pp = f["paths"], ap+".paths"
		if paths == nil {
			v.add(n, pp, "is required")
			return nil
		}
	}
	if paths.Kind != yaml.SequenceNode && paths.Kind != yaml.ScalarNode {
		v.add(paths, pp, "must be a list of paths, got %s", describe(paths))
		return nil
	}
	before := len(v.problems)
	a.Paths = v.oneOrMany(paths, pp, func(g *yaml.Node, gp, glob string) bool {
		// A trailing '/' names a directory, which is kept whole anyway.
		if err := pathglob.ValidGlob(strings.TrimSuffix(glob, "/")); err != nil {
			v.add(g, gp, "invalid artifact path %s: %v", quote(glob), err)
			return false
		}
		return true
	})
	switch {
	case len(a.Paths) == 0 && len(v.problems) == before:
		v.add(paths, pp, "must list at least one path")
	case len(a.Paths) > maxArtifactPaths:
		v.add(paths, pp, "must have at most %d paths, got %d", maxArtifactPaths, len(a.Paths))
	}
	for i, p := range a.Paths {
		a.Paths[i] = strings.TrimSuffix(p, "/")
	}
	return a
}
