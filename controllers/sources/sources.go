// Package sources is how the controllers use what a repository needs: the git Secret a
// run or trigger names, checked against the repositories its owner allows, the forge
// token a trigger reports with, and the condition reason of a failed git call. Secrets
// are read by name through an uncached reader: the operator may get them, never list or
// watch them, and never caches one.
package sources

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gitsource"
	"github.com/flow-ci/flow-ci/internal/render"
)

// Errors of a Secret read. A missing Secret may appear later (GitOps tools apply it
// after the run or trigger); the others are the Secret owner's or the user's to fix.
// Each reads after the Secret's name: `git secret "creds" not found`.
var (
	ErrSecretNotFound = errors.New("not found")
	ErrNotAllowed     = errors.New("may not be used")
	ErrMalformed      = errors.New("is malformed")
)

// TokenKey is the key of a report Secret that holds the forge's API token.
const TokenKey = "token"

// Secrets reads Secrets for repositories.
type Secrets struct {
	// Reader must not be a caching client: Secrets are read by name, every time.
	Reader client.Reader
}

// read gets the Secret name in namespace and checks that its allow-list, if it has one,
// names repoURL.
func (s Secrets) read(ctx context.Context, namespace, name, repoURL string) (*corev1.Secret, error) {
	secret := &corev1.Secret{}
	if err := s.Reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("secret %q %w", name, ErrSecretNotFound)
		}
		return nil, fmt.Errorf("reading secret %q: %w", name, err)
	}
	if list, ok := secret.Annotations[v1alpha1.AnnotationAllowedRepositories]; ok && !Allowed(list, repoURL) {
		return nil, fmt.Errorf("secret %q %w for %s: it is not in the Secret's %s",
			name, ErrNotAllowed, render.NormalizeRepoURL(repoURL), v1alpha1.AnnotationAllowedRepositories)
	}
	return secret, nil
}

// GitAuth reads the git Secret ref names in namespace for repoURL, and parses it. It
// returns the Secret's resourceVersion, so that what was read with it is never reused
// past a change of the credentials. A nil ref is anonymous access.
func (s Secrets) GitAuth(ctx context.Context, namespace string, ref *v1alpha1.SecretReference, repoURL string) (*gitsource.Auth, string, error) {
	if ref == nil {
		return nil, "", nil
	}
	secret, err := s.read(ctx, namespace, ref.Name, repoURL)
	if err != nil {
		return nil, "", fmt.Errorf("git %w", err)
	}
	auth, err := gitsource.AuthFromSecretData(secret.Data)
	if err != nil {
		return nil, "", fmt.Errorf("git secret %q %w: %w", ref.Name, ErrMalformed, err)
	}
	return auth, secret.ResourceVersion, nil
}

// Token reads the forge token (key TokenKey) of the Secret name in namespace, for
// posting statuses of repoURL.
func (s Secrets) Token(ctx context.Context, namespace, name, repoURL string) (string, error) {
	secret, err := s.read(ctx, namespace, name, repoURL)
	if err != nil {
		return "", fmt.Errorf("report %w", err)
	}
	token := strings.TrimSpace(string(secret.Data[TokenKey]))
	if token == "" {
		return "", fmt.Errorf("report secret %q %w: it has no %q key", name, ErrMalformed, TokenKey)
	}
	return token, nil
}

// Allowed matches a repository against a Secret's allow-list
// (v1alpha1.AnnotationAllowedRepositories): patterns separated by commas or newlines,
// each a path.Match glob of the normalised URL (host/path: "github.com/org/*" allows
// every repository of org, and nothing deeper).
func Allowed(list, repoURL string) bool {
	repo := render.NormalizeRepoURL(repoURL)
	for _, p := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == '\n' }) {
		p = render.NormalizeRepoURL(strings.TrimSpace(p))
		if ok, err := path.Match(p, repo); err == nil && ok {
			return true
		}
	}
	return false
}

// Permanent reports whether err, of a Secret read or a git call, is one a retry cannot
// fix.
func Permanent(err error) bool {
	return errors.Is(err, ErrNotAllowed) || errors.Is(err, ErrMalformed) || gitsource.IsPermanent(err)
}

// Reason is the condition reason a run or trigger reports a permanent error of a
// Secret read or a git call with; errors it does not know are InvalidSpec.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrSecretNotFound):
		return v1alpha1.ReasonSecretNotFound
	case errors.Is(err, ErrNotAllowed), errors.Is(err, ErrMalformed),
		errors.Is(err, gitsource.ErrAuthenticationFailed), errors.Is(err, gitsource.ErrInvalidAuth),
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
