// Package pipeline parses and validates a repository's build/flow-ci.yaml.
//
// The package is pure: it takes the file's bytes and returns a typed,
// validated Pipeline or an *Error listing every problem with its YAML path and
// line, so the reconciler can put the message in status as-is and end the run
// without retrying.
package pipeline

import (
	"fmt"
	"strings"
	"time"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// Limits on a pipeline file. They keep a hostile or broken file from costing
// the operator memory or producing objects the API server would reject.
const (
	// MaxFileSize is checked before the YAML parser sees a byte.
	MaxFileSize = 256 << 10
	// MaxSteps bounds the number of step Jobs a single run can create; status has
	// room for exactly this many steps.
	MaxSteps = v1alpha1.MaxSteps
	// MaxCommandsPerStep bounds the script rendered into one container.
	MaxCommandsPerStep = 200
	// MaxRetries bounds how many times a failed step is re-run.
	MaxRetries = 5
)

// ReservedEnvPrefix starts the names of the variables only the operator sets
// (FLOWCI_RUN, FLOWCI_COMMIT, ...); a pipeline file may not use it.
const ReservedEnvPrefix = "FLOWCI_"

// Pipeline is a validated build/flow-ci.yaml.
type Pipeline struct {
	// Version is the file format version; it is 1 when the file omits it.
	Version int
	// Name is the human-readable pipeline name.
	Name string
	// Image is the default image for steps that do not set their own; ""
	// means the operator's default. See StepImage.
	Image string
	// Env applies to every step. A step's Env entry with the same name takes
	// precedence. Sorted by Name.
	Env []EnvVar
	// Steps run in order. There is at least one, and names are unique.
	Steps []Step
}

// EnvVar is one environment variable. Slices of EnvVar are sorted by Name so
// that the same file always renders the same objects.
type EnvVar struct {
	Name  string
	Value string
}

// Step is one step of a pipeline, run as its own container.
type Step struct {
	// Name is unique within the pipeline. It is not DNS-safe; render must
	// derive object names from it.
	Name string
	// Image overrides Pipeline.Image; "" means inherit it.
	Image string
	// Env is sorted by Name.
	Env []EnvVar
	// Commands run in order; there is at least one and none is blank.
	Commands []string
	// Timeout is the step's time limit; 0 means none.
	Timeout time.Duration
	// WorkingDir is a cleaned path relative to the repository root that does
	// not escape it; "" means the root itself.
	WorkingDir string
	// Retries is how many times the step is re-run after a failure.
	Retries int
}

// Definition is a parsed pipeline file together with the digest of the bytes
// it was parsed from, so a run can record exactly which file it used.
type Definition struct {
	Pipeline Pipeline
	// Digest is "sha256:<hex>" of the raw file bytes.
	Digest string
}

// StepImage returns the image for step i: the step's own, else the
// pipeline's, else defaultImage. It panics if i is out of range, as slice
// indexing would.
func (p *Pipeline) StepImage(i int, defaultImage string) string {
	if img := p.Steps[i].Image; img != "" {
		return img
	}
	if p.Image != "" {
		return p.Image
	}
	return defaultImage
}

// Error is the only error type Parse returns. It lists every problem found,
// sorted by line, up to a fixed bound.
type Error struct {
	Problems []Problem
}

// Problem is one thing wrong with a pipeline file.
type Problem struct {
	// Path is the YAML path, e.g. "steps[2].commands"; "" for the whole file.
	Path string
	// Line is 1-based; 0 when no line is known.
	Line int
	Msg  string
}

// String formats the problem as `path: msg (line N)`.
func (p Problem) String() string {
	var b strings.Builder
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	if p.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", p.Line)
	}
	return b.String()
}

func (e *Error) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.String()
	}
	return strings.Join(msgs, "; ")
}
