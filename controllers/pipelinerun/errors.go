package pipelinerun

import (
	"errors"
	"fmt"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
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
// returned as they are, for a retry with backoff.
func classifyGitError(err error) error {
	if !gitsource.IsPermanent(err) {
		return err
	}
	reason := v1alpha1.ReasonInvalidSpec
	switch {
	case errors.Is(err, gitsource.ErrAuthenticationFailed), errors.Is(err, gitsource.ErrInvalidAuth),
		errors.Is(err, gitsource.ErrHostKeyMismatch), errors.Is(err, gitsource.ErrTLSVerification):
		reason = v1alpha1.ReasonAuthenticationFailed
	case errors.Is(err, gitsource.ErrRepositoryNotFound):
		reason = v1alpha1.ReasonRepositoryNotFound
	case errors.Is(err, gitsource.ErrBranchNotFound), errors.Is(err, gitsource.ErrEmptyRepository):
		reason = v1alpha1.ReasonBranchNotFound
	case errors.Is(err, gitsource.ErrRevisionNotServed), errors.Is(err, gitsource.ErrInvalidRevision):
		reason = v1alpha1.ReasonRevisionNotFound
	case errors.Is(err, gitsource.ErrFileNotFound):
		reason = v1alpha1.ReasonDefinitionNotFound
	case errors.Is(err, gitsource.ErrFileTooLarge):
		reason = v1alpha1.ReasonInvalidDefinition
	}
	return &runError{reason: reason, err: err}
}
