package pipelinerun

import (
	"fmt"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers/sources"
	"github.com/flow-ci/flow-ci/internal/gitsource"
)

// runError is an error that ends the run: it carries the Succeeded condition's reason.
// Any other error a phase returns is transient and retried with backoff.
type runError struct {
	reason string
	err    error
}

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

// permanent makes an error that ends the run with reason.
func permanent(reason string, format string, args ...any) error {
	return &runError{reason: reason, err: fmt.Errorf(format, args...)}
}

// classifyGitError maps gitsource's typed errors to run reasons. Transient errors are
// retried with backoff, up to the pending timeout (SourceUnavailable).
func classifyGitError(err error) error {
	if !gitsource.IsPermanent(err) {
		return waitingFor(v1alpha1.ReasonSourceUnavailable, err)
	}
	return &runError{reason: sources.Reason(err), err: err}
}

// waitError is a transient error of a run that has no definition yet: what it waits
// for, as the reason it fails with once the operator's --pending-timeout has passed.
type waitError struct {
	reason string
	err    error
}

func (e *waitError) Error() string { return e.err.Error() }
func (e *waitError) Unwrap() error { return e.err }

// waitingFor makes a transient error that ends the run with reason if it lasts past the
// pending timeout.
func waitingFor(reason string, err error) error {
	return &waitError{reason: reason, err: err}
}
