package sources

import (
	"errors"
	"fmt"
	"testing"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gitsource"
)

func TestAllowed(t *testing.T) {
	for _, tc := range []struct {
		list, repo string
		want       bool
	}{
		{"github.com/org/*", "https://github.com/org/app.git", true},
		{"github.com/org/*", "git@github.com:org/app.git", true},
		{"github.com/org/*", "https://github.com/org/app/sub.git", false},
		{"github.com/org/*", "https://github.com/other/app.git", false},
		{"gitlab.example/a/b, github.com/org/app", "https://GitHub.com/org/app/", true},
		{"github.com/org/app\ngitlab.example/*", "https://gitlab.example/x.git", true},
		{"", "https://github.com/org/app.git", false},
	} {
		if got := Allowed(tc.list, tc.repo); got != tc.want {
			t.Errorf("Allowed(%q, %q) = %v, want %v", tc.list, tc.repo, got, tc.want)
		}
	}
}

func TestReasonAndPermanent(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("reading: %w", err) }
	for _, tc := range []struct {
		err       error
		reason    string
		permanent bool
	}{
		{wrap(ErrSecretNotFound), v1alpha1.ReasonSecretNotFound, false},
		{wrap(ErrNotAllowed), v1alpha1.ReasonAuthenticationFailed, true},
		{wrap(ErrMalformed), v1alpha1.ReasonAuthenticationFailed, true},
		{wrap(gitsource.ErrHostKeyMismatch), v1alpha1.ReasonAuthenticationFailed, true},
		{wrap(gitsource.ErrRepositoryNotFound), v1alpha1.ReasonRepositoryNotFound, true},
		{wrap(gitsource.ErrEmptyRepository), v1alpha1.ReasonBranchNotFound, true},
		{wrap(gitsource.ErrRevisionNotServed), v1alpha1.ReasonRevisionNotFound, true},
		{wrap(gitsource.ErrFileNotFound), v1alpha1.ReasonDefinitionNotFound, true},
		{wrap(gitsource.ErrFileTooLarge), v1alpha1.ReasonInvalidDefinition, true},
		{wrap(gitsource.ErrAddressNotAllowed), v1alpha1.ReasonAddressNotAllowed, true},
		{wrap(gitsource.ErrTooLarge), v1alpha1.ReasonSourceTooLarge, true},
		{wrap(gitsource.ErrTimeout), v1alpha1.ReasonInvalidSpec, false},
		{errors.New("connection reset"), v1alpha1.ReasonInvalidSpec, false},
	} {
		if got := Reason(tc.err); got != tc.reason {
			t.Errorf("Reason(%v) = %s, want %s", tc.err, got, tc.reason)
		}
		if got := Permanent(tc.err); got != tc.permanent {
			t.Errorf("Permanent(%v) = %v, want %v", tc.err, got, tc.permanent)
		}
	}
}
