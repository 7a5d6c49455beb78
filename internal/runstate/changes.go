package runstate

import (
	"fmt"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/changes"
	"github.com/flow-ci/flow-ci/internal/pipeline"
	"github.com/flow-ci/flow-ci/internal/shorten"
)

// Changes are the files a run's commit changed since its changes base, for when.changes.
type Changes struct {
	// Since says what the files changed since, for messages: a commit, or a pull
	// request's merge base with its target.
	Since string
	// All says every file counts as changed (no base, a force push past it, too many
	// files, or changes that could not be read); Files is then empty.
	All   bool
	Files []string
}

// SkipUnchanged skips, when the run is pinned, each pending step whose when.changes
// matches no changed file (WhenFalse, with the filter in its message). With no changes
// known, or all counting, every step runs: a filter never skips a step on a guess.
func SkipUnchanged(run *v1alpha1.PipelineRun, p *pipeline.Pipeline, c *Changes) {
	if c == nil || c.All || len(run.Status.Steps) != len(p.Steps)+len(p.Finally) {
		return
	}
	for i := range run.Status.Steps {
		globs := p.Step(i).When.Changes
		s := &run.Status.Steps[i]
		if len(globs) == 0 || s.Phase != v1alpha1.StepPending {
			continue
		}
		if ok, why := (changes.Filter{Paths: globs}).Decide(c.Files, false); !ok {
			skip(s, v1alpha1.ReasonWhenFalse, shorten.Tail(fmt.Sprintf("skipped: when.changes: %s since %s", why, c.Since), v1alpha1.MaxMessageBytes))
		}
	}
}
