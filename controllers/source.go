package controllers

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gitsource"
	"github.com/flow-ci/flow-ci/internal/pipeline"
)

// Source resolves a run's commit and reads its pipeline file. The reconciler takes it as
// an interface so that benchmarks can count or stub git access; tests use the real one
// against a git server on loopback.
type Source interface {
	ResolveCommit(ctx context.Context, repoURL, branch, revision string, auth *gitsource.Auth) (string, error)
	ReadFile(ctx context.Context, repoURL, commit, path string, auth *gitsource.Auth) ([]byte, error)
}

// GitSource is the go-git backed Source.
type GitSource struct {
	Options []gitsource.Option
}

// ResolveCommit implements Source.
func (g GitSource) ResolveCommit(ctx context.Context, repoURL, branch, revision string, auth *gitsource.Auth) (string, error) {
	return gitsource.ResolveCommit(ctx, repoURL, branch, revision, auth, g.Options...)
}

// ReadFile implements Source.
func (g GitSource) ReadFile(ctx context.Context, repoURL, commit, path string, auth *gitsource.Auth) ([]byte, error) {
	return gitsource.ReadFile(ctx, repoURL, commit, path, auth, append([]gitsource.Option{gitsource.WithMaxFileSize(pipeline.MaxFileSize)}, g.Options...)...)
}

// runError is an error that ends the run: it carries the Succeeded reason.
type runError struct {
	reason string
	err    error
}

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

func permanent(reason string, format string, args ...any) error {
	return &runError{reason: reason, err: fmt.Errorf(format, args...)}
}

// classifyGitError maps gitsource's typed errors to run reasons. Transient errors are
// returned as they are, for a retry with backoff.
func classifyGitError(err error) error {
	if !gitsource.IsPermanent(err) {
		return err
	}
	reason := civ1alpha1.ReasonInvalidSpec
	switch {
	case errors.Is(err, gitsource.ErrAuthenticationFailed), errors.Is(err, gitsource.ErrInvalidAuth),
		errors.Is(err, gitsource.ErrHostKeyMismatch), errors.Is(err, gitsource.ErrTLSVerification):
		reason = civ1alpha1.ReasonAuthenticationFailed
	case errors.Is(err, gitsource.ErrRepositoryNotFound):
		reason = civ1alpha1.ReasonRepositoryNotFound
	case errors.Is(err, gitsource.ErrBranchNotFound), errors.Is(err, gitsource.ErrEmptyRepository):
		reason = civ1alpha1.ReasonBranchNotFound
	case errors.Is(err, gitsource.ErrRevisionNotServed), errors.Is(err, gitsource.ErrInvalidRevision):
		reason = civ1alpha1.ReasonRevisionNotFound
	case errors.Is(err, gitsource.ErrFileNotFound):
		reason = civ1alpha1.ReasonDefinitionNotFound
	case errors.Is(err, gitsource.ErrFileTooLarge):
		reason = civ1alpha1.ReasonInvalidDefinition
	}
	return &runError{reason: reason, err: err}
}

// gitAuth reads the run's git Secret through the uncached reader: the operator may get
// Secrets by name but never lists or watches them. A missing Secret is transient, because
// GitOps tools may apply it after the run; a malformed one ends the run.
func (r *PipelineRunReconciler) gitAuth(ctx context.Context, run *civ1alpha1.PipelineRun) (*gitsource.Auth, error) {
	ref := run.Spec.GitSecretRef
	if ref == nil {
		return nil, nil
	}
	secret := &corev1.Secret{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: run.Namespace, Name: ref.Name}, secret)
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("git secret %q not found", ref.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("reading git secret %q: %w", ref.Name, err)
	}
	auth, err := gitsource.AuthFromSecretData(secret.Data)
	if err != nil {
		return nil, permanent(civ1alpha1.ReasonAuthenticationFailed, "git secret %q: %w", ref.Name, err)
	}
	return auth, nil
}
