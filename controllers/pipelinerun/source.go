package pipelinerun

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers"
	"github.com/flow-ci/flow-ci/internal/gitsource"
	"github.com/flow-ci/flow-ci/internal/pipeline"
	"github.com/flow-ci/flow-ci/internal/render"
	"github.com/flow-ci/flow-ci/internal/shorten"
)

// Source resolves a run's commit and reads its pipeline file. GitSource is the
// implementation; the operator and the tests use it against real git servers, and the
// benchmark also with a stub, to tell git's cost from the controller's.
type Source interface {
	ResolveCommit(ctx context.Context, repoURL, branch, revision string, auth *gitsource.Auth) (string, error)
	ReadFile(ctx context.Context, repoURL, commit, path string, auth *gitsource.Auth) ([]byte, error)
	OnBranch(ctx context.Context, repoURL, branch, commit string, auth *gitsource.Auth) (bool, error)
}

// GitSource is the go-git backed Source.
type GitSource struct {
	Options []gitsource.Option
}

// ResolveCommit implements Source.
func (g GitSource) ResolveCommit(ctx context.Context, repoURL, branch, revision string, auth *gitsource.Auth) (string, error) {
	if revision != "" {
		return gitsource.ResolveCommit(ctx, repoURL, branch, revision, auth, g.Options...) // no I/O
	}
	start := time.Now()
	commit, err := gitsource.ResolveCommit(ctx, repoURL, branch, revision, auth, g.Options...)
	controllers.ObserveGit("resolve", start, err)
	return commit, err
}

// ReadFile implements Source; files larger than a pipeline file may be are refused.
func (g GitSource) ReadFile(ctx context.Context, repoURL, commit, path string, auth *gitsource.Auth) ([]byte, error) {
	start := time.Now()
	raw, err := gitsource.ReadFile(ctx, repoURL, commit, path, pipeline.MaxFileSize, auth, g.Options...)
	controllers.ObserveGit("read", start, err)
	return raw, err
}

// OnBranch implements Source.
func (g GitSource) OnBranch(ctx context.Context, repoURL, branch, commit string, auth *gitsource.Auth) (bool, error) {
	return gitsource.OnBranch(ctx, repoURL, branch, commit, auth, g.Options...)
}

// fetchFunc is a run's fetch, for the pool: it reads the git Secret, resolves the commit
// (shared with concurrent runs of the same repository, branch and credentials), checks
// a pinned revision against its branch, reads the pipeline file (cached) and validates
// it. It never touches the run object the reconciler holds.
func (r *Reconciler) fetchFunc(run *v1alpha1.PipelineRun, admitted time.Time) func(context.Context, time.Duration) fetched {
	return func(ctx context.Context, waited time.Duration) fetched {
		auth, version, err := r.gitAuth(ctx, run)
		if err != nil {
			return fetched{err: err}
		}
		gctx, cancel := r.gitContext(ctx, admitted, waited, run)
		defer cancel()
		res := fetched{commit: run.Status.Commit} // pinned before the ConfigMap was lost: never re-resolve
		if res.commit == "" {
			key := fetchKey(run, version, "resolve", run.Spec.Branch, run.Spec.Revision)
			if res.commit, err = r.fetches.resolve(key, func() (string, error) {
				return r.Source.ResolveCommit(gctx, run.Spec.RepoURL, run.Spec.Branch, run.Spec.Revision, auth)
			}); err != nil {
				return fetched{err: classifyGitError(err)}
			}
		}
		if run.Spec.Revision != "" {
			// A pinned revision is built as its branch only if it is on it; otherwise the
			// run is detached, and says so.
			on, err := r.Source.OnBranch(gctx, run.Spec.RepoURL, run.Spec.Branch, res.commit, auth)
			if err != nil {
				return fetched{err: classifyGitError(err)}
			}
			res.detached = !on
			if on {
				res.branch = run.Spec.Branch
			}
		}
		key := fetchKey(run, version, "file", res.commit, run.Spec.PipelinePath)
		if res.raw, err = r.fetches.readFile(key, func() ([]byte, error) {
			return r.Source.ReadFile(gctx, run.Spec.RepoURL, res.commit, run.Spec.PipelinePath, auth)
		}); err != nil {
			return fetched{err: classifyGitError(err)}
		}
		if _, err := pipeline.Parse(res.raw); err != nil {
			res.err = permanent(v1alpha1.ReasonInvalidDefinition, "%s at %s: %v", run.Spec.PipelinePath, shorten.SHA(res.commit), err)
		}
		return res
	}
}

// gitAuth reads the run's git Secret through the uncached reader: the operator may get
// Secrets by name but never lists or watches them. A missing Secret is transient, because
// GitOps tools may apply it after the run; a malformed one ends the run. It returns the
// Secret's resourceVersion, so cached reads never outlive the credentials they used.
func (r *Reconciler) gitAuth(ctx context.Context, run *v1alpha1.PipelineRun) (*gitsource.Auth, string, error) {
	ref := run.Spec.GitSecretRef
	if ref == nil {
		return nil, "", nil
	}
	secret := &corev1.Secret{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: run.Namespace, Name: ref.Name}, secret)
	if apierrors.IsNotFound(err) {
		return nil, "", waitingFor(v1alpha1.ReasonSecretNotFound, fmt.Errorf("git secret %q not found", ref.Name))
	}
	if err != nil {
		return nil, "", fmt.Errorf("reading git secret %q: %w", ref.Name, err)
	}
	if allowed, ok := secret.Annotations[v1alpha1.AnnotationAllowedRepositories]; ok && !render.RepositoryAllowed(allowed, run.Spec.RepoURL) {
		return nil, "", permanent(v1alpha1.ReasonAuthenticationFailed, "git secret %q may not be used for %s: it is not in the Secret's %s",
			ref.Name, render.NormalizeRepoURL(run.Spec.RepoURL), v1alpha1.AnnotationAllowedRepositories)
	}
	auth, err := gitsource.AuthFromSecretData(secret.Data)
	if err != nil {
		return nil, "", permanent(v1alpha1.ReasonAuthenticationFailed, "git secret %q: %w", ref.Name, err)
	}
	return auth, secret.ResourceVersion, nil
}
