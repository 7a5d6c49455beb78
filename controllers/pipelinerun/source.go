package pipelinerun

import (
	"context"
	"errors"
	"time"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers/metrics"
	"github.com/flow-ci/flow-ci/controllers/sources"
	"github.com/flow-ci/flow-ci/internal/gitsource"
	"github.com/flow-ci/flow-ci/internal/pipeline"
	"github.com/flow-ci/flow-ci/internal/runstate"
	"github.com/flow-ci/flow-ci/internal/shorten"
)

// Source resolves a run's commit and reads its pipeline file. GitSource is the
// implementation; the operator and the tests use it against real git servers, and the
// benchmark also with a stub, to tell git's cost from the controller's.
type Source interface {
	ResolveCommit(ctx context.Context, repoURL, branch, revision string, auth *gitsource.Auth) (string, error)
	ReadFile(ctx context.Context, repoURL, commit, path string, auth *gitsource.Auth) ([]byte, error)
	OnBranch(ctx context.Context, repoURL, branch, commit string, auth *gitsource.Auth) (bool, error)
	ChangedFiles(ctx context.Context, repoURL, base, head string, auth *gitsource.Auth) ([]string, bool, error)
	ChangedFilesFromMergeBase(ctx context.Context, repoURL, target, head string, auth *gitsource.Auth) ([]string, bool, error)
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
	metrics.ObserveGit("resolve", start, err)
	return commit, err
}

// ReadFile implements Source; a file larger than a pipeline file may be is refused.
func (g GitSource) ReadFile(ctx context.Context, repoURL, commit, path string, auth *gitsource.Auth) ([]byte, error) {
	start := time.Now()
	raw, err := gitsource.ReadFile(ctx, repoURL, commit, path, pipeline.MaxFileSize, auth, g.Options...)
	metrics.ObserveGit("read", start, err)
	return raw, err
}

// OnBranch implements Source.
func (g GitSource) OnBranch(ctx context.Context, repoURL, branch, commit string, auth *gitsource.Auth) (bool, error) {
	return gitsource.OnBranch(ctx, repoURL, branch, commit, auth, g.Options...)
}

// ChangedFiles implements Source.
func (g GitSource) ChangedFiles(ctx context.Context, repoURL, base, head string, auth *gitsource.Auth) ([]string, bool, error) {
	start := time.Now()
	files, all, err := gitsource.ChangedFiles(ctx, repoURL, base, head, auth, g.Options...)
	metrics.ObserveGit("changes", start, err)
	return files, all, err
}

// ChangedFilesFromMergeBase implements Source.
func (g GitSource) ChangedFilesFromMergeBase(ctx context.Context, repoURL, target, head string, auth *gitsource.Auth) ([]string, bool, error) {
	start := time.Now()
	files, all, err := gitsource.ChangedFilesFromMergeBase(ctx, repoURL, target, head, auth, g.Options...)
	metrics.ObserveGit("changes", start, err)
	return files, all, err
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
		if run.Spec.Revision != "" && run.Labels[v1alpha1.LabelPullRequest] == "" {
			// A pinned revision is built as its branch only if it is on it; otherwise the
			// run is detached, and says so. A trigger's run of a pull request builds its
			// head for its target branch (the label is the operator's alone).
			on, err := r.Source.OnBranch(gctx, run.Spec.RepoURL, run.Spec.Branch, res.commit, auth)
			if err != nil {
				return fetched{err: classifyGitError(err)}
			}
			res.detached = !on
		}
		key := fetchKey(run, version, "file", res.commit, run.Spec.PipelinePath)
		if res.raw, err = r.fetches.readFile(key, func() ([]byte, error) {
			return r.Source.ReadFile(gctx, run.Spec.RepoURL, res.commit, run.Spec.PipelinePath, auth)
		}); err != nil {
			return fetched{err: classifyGitError(err)}
		}
		def, err := pipeline.Parse(res.raw)
		if err != nil {
			res.err = permanent(v1alpha1.ReasonInvalidDefinition, "%s at %s: %v", run.Spec.PipelinePath, shorten.SHA(res.commit), err)
			return res
		}
		res.changes = r.changesFor(gctx, run, res.commit, &def.Pipeline, auth)
		return res
	}
}

// changesFor lists the files commit changes since the run's changes base, when some step
// of p has when.changes; nil when no step needs them. A trigger's run of a pull request
// compares with the merge base of its head and its target, as a forge shows a pull
// request. A run without a base (by hand, a branch's first build), or whose changes
// cannot be read, counts every file as changed: a path filter must never skip a step
// on a guess.
func (r *Reconciler) changesFor(ctx context.Context, run *v1alpha1.PipelineRun, commit string, p *pipeline.Pipeline, auth *gitsource.Auth) *runstate.Changes {
	if !p.HasChangesFilter() {
		return nil
	}
	var (
		out   = &runstate.Changes{All: true}
		files []string
		all   bool
		err   error
	)
	switch base := run.Annotations[v1alpha1.AnnotationChangesBase]; {
	case run.Labels[v1alpha1.LabelPullRequest] != "":
		out.Since = "the merge base with " + run.Spec.Branch
		files, all, err = r.Source.ChangedFilesFromMergeBase(ctx, run.Spec.RepoURL, run.Spec.Branch, commit, auth)
	case base != "":
		out.Since = shorten.SHA(base)
		files, all, err = r.Source.ChangedFiles(ctx, run.Spec.RepoURL, base, commit, auth)
	default:
		return out
	}
	if err == nil {
		out.Files, out.All = files, all
	}
	return out
}

// gitAuth reads the run's git Secret (controllers/sources): a missing Secret is
// transient, because GitOps tools may apply it after the run; one that is malformed or
// may not be used for the repository ends the run. It returns the Secret's
// resourceVersion, so cached reads never outlive the credentials they used.
func (r *Reconciler) gitAuth(ctx context.Context, run *v1alpha1.PipelineRun) (*gitsource.Auth, string, error) {
	auth, version, err := sources.Secrets{Reader: r.APIReader}.GitAuth(ctx, run.Namespace, run.Spec.GitSecretRef, run.Spec.RepoURL)
	switch {
	case errors.Is(err, sources.ErrSecretNotFound):
		return nil, "", waitingFor(v1alpha1.ReasonSecretNotFound, err)
	case err != nil && sources.Permanent(err):
		return nil, "", permanent(sources.Reason(err), "%w", err)
	}
	return auth, version, err
}
