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

	corev1 "k8s.io/api/core/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// Limits on a pipeline file. They keep a hostile or broken file from costing
// the operator memory or producing objects the API server would reject.
const (
	// MaxFileSize is checked before the YAML parser sees a byte.
	MaxFileSize = 256 << 10
	// MaxSteps bounds the steps and finally steps of a pipeline, so the step Jobs a
	// run can create; status has room for exactly this many steps.
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
	// Steps are the graph: a step runs once the steps it depends on have ended well.
	// There is at least one, and names are unique across Steps and Finally.
	Steps []Step
	// Finally steps run after every step of the graph has ended, whatever its outcome.
	Finally []Step
	// FailFast stops the graph at its first failure.
	FailFast bool
	// Resources are the default requests and limits of every step.
	Resources Resources
	// Caches are restored before the first step and saved after a run that may save
	// them succeeds.
	Caches []Cache
}

// All is Steps then Finally: status lists the steps in this order, and Job names use
// the index in it.
func (p *Pipeline) All() []Step {
	return append(append(make([]Step, 0, len(p.Steps)+len(p.Finally)), p.Steps...), p.Finally...)
}

// HasChangesFilter reports whether some step has when.changes.
func (p *Pipeline) HasChangesFilter() bool {
	for i := range len(p.Steps) + len(p.Finally) {
		if len(p.Step(i).When.Changes) > 0 {
			return true
		}
	}
	return false
}

// Step is step i of All() without copying the lists: Steps, then Finally. It panics
// when i is out of range, as slice indexing would.
func (p *Pipeline) Step(i int) *Step {
	if i >= len(p.Steps) {
		return &p.Finally[i-len(p.Steps)]
	}
	return &p.Steps[i]
}

// Path is the YAML path of step i of All(), such as steps[2] or finally[0].
func (p *Pipeline) Path(i int) string {
	key, at := "steps", i
	if i >= len(p.Steps) {
		key, at = "finally", i-len(p.Steps)
	}
	if src := p.Step(i).Source; src > 0 {
		at = src - 1
	}
	return indexPath(key, at)
}

// Resources are a step container's requests and limits.
type Resources struct {
	Requests, Limits corev1.ResourceList
	// Line is where the file sets them, for errors found once the operator's bounds
	// apply; 0 when it does not.
	Line int
}

// When is a step's condition.
type When struct {
	// Branch globs (path.Match) the run's branch must match; empty matches any. A run
	// pinned to a revision that is not on its branch matches only "*".
	Branch []string
	// Status is a finally step's condition on the graph's outcome: StatusSuccess,
	// StatusFailure or StatusAlways (also when empty).
	Status string
	// Event lists the events (v1alpha1.Event values) of the runs the step runs in;
	// empty matches any.
	Event []string
	// Changes are globs (internal/changes) of which some file the run's commit changed
	// must match for the step to run; empty: no condition.
	Changes []string
}

// Values of When.Status.
const (
	StatusSuccess = "success"
	StatusFailure = "failure"
	StatusAlways  = "always"
)

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
	// DependsOn names the steps this one waits for, as resolved: the file's dependsOn,
	// or the step before it when the file gives none (none for the first step and for
	// finally steps).
	DependsOn []string
	// When decides whether the step runs or is skipped.
	When When
	// AllowFailure lets the step fail without failing the run or its dependents.
	AllowFailure bool
	// Resources override the pipeline's, per resource.
	Resources Resources
	// Finally is true for the steps of the file's finally list.
	Finally bool
	// Secrets are the Secrets the step asks for, in the file's order.
	Secrets []SecretUse
	// Artifacts are the files the step keeps once it ends; nil keeps none.
	Artifacts *Artifacts
	// Services run beside the step's container in its pod (services.go).
	Services []Service
	// SavesCaches marks the step the operator adds to save the caches (WithCacheSave);
	// no step of a file is one.
	SavesCaches bool
	// Source is 1 + the step's index in its list in the file, set when the list has a
	// matrix step (0: the index is the file's, or the operator added the step): a
	// matrix step becomes several steps, and errors name the file's item.
	Source int
	// Matrix is the file's matrix of a step before it is expanded; Combination is an
	// expanded step's values (matrix.go).
	Matrix      *Matrix
	Combination Combination
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
	if img := p.Step(i).Image; img != "" {
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
