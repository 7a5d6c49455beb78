package controllers

import (
	"errors"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gitsource"
)

// GitReason maps a permanent error of internal/gitsource to the condition reason both
// controllers report it with; errors it does not know are InvalidSpec.
func GitReason(err error) string {
	switch {
	case errors.Is(err, gitsource.ErrAuthenticationFailed), errors.Is(err, gitsource.ErrInvalidAuth),
		errors.Is(err, gitsource.ErrHostKeyMismatch), errors.Is(err, gitsource.ErrTLSVerification):
		return v1alpha1.ReasonAuthenticationFailed
	case errors.Is(err, gitsource.ErrRepositoryNotFound):
		return v1alpha1.ReasonRepositoryNotFound
	case errors.Is(err, gitsource.ErrBranchNotFound), errors.Is(err, gitsource.ErrEmptyRepository):
		return v1alpha1.ReasonBranchNotFound
	case errors.Is(err, gitsource.ErrRevisionNotServed), errors.Is(err, gitsource.ErrInvalidRevision):
		return v1alpha1.ReasonRevisionNotFound
	case errors.Is(err, gitsource.ErrFileNotFound):
		return v1alpha1.ReasonDefinitionNotFound
	case errors.Is(err, gitsource.ErrFileTooLarge):
		return v1alpha1.ReasonInvalidDefinition
	case errors.Is(err, gitsource.ErrAddressNotAllowed):
		return v1alpha1.ReasonAddressNotAllowed
	case errors.Is(err, gitsource.ErrTooLarge):
		return v1alpha1.ReasonSourceTooLarge
	}
	return v1alpha1.ReasonInvalidSpec
}
