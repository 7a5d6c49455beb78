package pipelinerun

import (
	"context"
	"fmt"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gitsource"
	"github.com/flow-ci/flow-ci/internal/pipeline"
	"github.com/flow-ci/flow-ci/internal/render"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

// Source resolves a run's commit and reads its pipeline file. GitSource is the
// implementation; the operator and the tests use it against real git servers.
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
	return gitsource.ResolveCommit(ctx, repoURL, branch, revision, auth, g.Options...)
}

// ReadFile implements Source; files larger than a pipeline file may be are refused.
func (g GitSource) ReadFile(ctx context.Context, repoURL, commit, path string, auth *gitsource.Auth) ([]byte, error) {
	return gitsource.ReadFile(ctx, repoURL, commit, path, pipeline.MaxFileSize, auth, g.Options...)
}

// OnBranch implements Source.
func (g GitSource) OnBranch(ctx context.Context, repoURL, branch, commit string, auth *gitsource.Auth) (bool, error) {
	return gitsource.OnBranch(ctx, repoURL, branch, commit, auth, g.Options...)
}

// reconcileDefinition pins the commit and the pipeline file. The first pass resolves the
// branch, reads and validates the file, and stores it in an immutable ConfigMap owned by
// the run; every later pass, and any restarted controller, uses that ConfigMap (read
// once, then memoised) and never resolves the branch again. A bad file ends the run
// (InvalidDefinition) before any child exists. ConfigMaps are not cached, so no tenant's
// ConfigMap costs the operator memory.
func (r *Reconciler) reconcileDefinition(ctx context.Context, s *scope) error {
	run := s.run
	p, ok := r.defs.get(run.UID)
	if !ok {
		cm := &corev1.ConfigMap{}
		err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: run.Namespace, Name: render.DefinitionName(run)}, cm)
		switch {
		case err == nil:
			if err := notOurs(cm, run); err != nil {
				return err
			}
		case apierrors.IsNotFound(err):
			if cm, err = r.fetchDefinition(ctx, s); err != nil {
				return err
			}
		default:
			return fmt.Errorf("reading the definition: %w", err)
		}
		raw := cm.Data[v1alpha1.DefinitionKey]
		def, err := pipeline.Parse([]byte(raw))
		if err != nil {
			return permanent(v1alpha1.ReasonInvalidDefinition, "%s: %v", run.Spec.PipelinePath, err)
		}
		p = &pinned{run: run.UID, commit: cm.Annotations[v1alpha1.AnnotationCommit], def: def, size: int64(len(raw))}
		r.defs.put(p)
	}
	if run.Status.DefinitionDigest != "" && run.Status.DefinitionDigest != p.def.Digest {
		return permanent(v1alpha1.ReasonInvalidDefinition, "the pinned definition changed: status has %s, ConfigMap %q has %s",
			run.Status.DefinitionDigest, render.DefinitionName(run), p.def.Digest)
	}
	runstate.Pin(run, p.commit, p.def)
	s.def = p.def
	return nil
}

// fetchDefinition does the git I/O: it resolves the commit, reads and validates the
// pipeline file, then stores it. When the ConfigMap already exists (a stale cache, or a
// restart between create and status patch) the stored one wins, so a branch that moved
// meanwhile cannot change the run.
func (r *Reconciler) fetchDefinition(ctx context.Context, s *scope) (*corev1.ConfigMap, error) {
	run := s.run
	auth, err := r.gitAuth(ctx, run)
	if err != nil {
		return nil, err
	}
	gctx, cancel := r.gitContext(ctx, s)
	defer cancel()
	commit := run.Status.Commit // pinned before the ConfigMap was lost: never re-resolve
	if commit == "" {
		if commit, err = r.Source.ResolveCommit(gctx, run.Spec.RepoURL, run.Spec.Branch, run.Spec.Revision, auth); err != nil {
			return nil, classifyGitError(err)
		}
	}
	if run.Spec.Revision != "" {
		// A pinned revision is built as its branch only if it is on it; otherwise the
		// run is detached, and says so.
		on, err := r.Source.OnBranch(gctx, run.Spec.RepoURL, run.Spec.Branch, commit, auth)
		if err != nil {
			return nil, classifyGitError(err)
		}
		run.Status.Branch, run.Status.Detached = "", !on
		if on {
			run.Status.Branch = run.Spec.Branch
		}
	}
	raw, err := r.Source.ReadFile(gctx, run.Spec.RepoURL, commit, run.Spec.PipelinePath, auth)
	if err != nil {
		return nil, classifyGitError(err)
	}
	if _, err := pipeline.Parse(raw); err != nil {
		// Pin the commit so the user sees which file was rejected.
		run.Status.Commit, run.Status.ShortCommit = commit, runstate.ShortSHA(commit)
		return nil, permanent(v1alpha1.ReasonInvalidDefinition, "%s at %s: %v", run.Spec.PipelinePath, runstate.ShortSHA(commit), err)
	}
	cm := render.RenderDefinition(run, commit, raw)
	// An existing ConfigMap of this run replaces ours in cm: the stored definition wins,
	// so a branch that moved since cannot change the run. Its owner reference can be
	// forged, so it wins only if it holds exactly the file at the commit it names.
	if err := r.ensureChild(ctx, run, cm); err != nil {
		return nil, err
	}
	if stored := cm.Data[v1alpha1.DefinitionKey]; stored != string(raw) {
		at := cm.Annotations[v1alpha1.AnnotationCommit]
		want, err := r.Source.ReadFile(gctx, run.Spec.RepoURL, at, run.Spec.PipelinePath, auth)
		if err != nil {
			return nil, classifyGitError(err)
		}
		if string(want) != stored {
			return nil, permanent(v1alpha1.ReasonChildConflict,
				"ConfigMap %q does not hold %s as it is at commit %q; it was left untouched", cm.Name, run.Spec.PipelinePath, at)
		}
	}
	return cm, nil
}

// gitAuth reads the run's git Secret through the uncached reader: the operator may get
// Secrets by name but never lists or watches them. A missing Secret is transient, because
// GitOps tools may apply it after the run; a malformed one ends the run.
func (r *Reconciler) gitAuth(ctx context.Context, run *v1alpha1.PipelineRun) (*gitsource.Auth, error) {
	ref := run.Spec.GitSecretRef
	if ref == nil {
		return nil, nil
	}
	secret := &corev1.Secret{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: run.Namespace, Name: ref.Name}, secret)
	if apierrors.IsNotFound(err) {
		return nil, waitingFor(v1alpha1.ReasonSecretNotFound, fmt.Errorf("git secret %q not found", ref.Name))
	}
	if err != nil {
		return nil, fmt.Errorf("reading git secret %q: %w", ref.Name, err)
	}
	if allowed, ok := secret.Annotations[v1alpha1.AnnotationAllowedRepositories]; ok && !repositoryAllowed(allowed, run.Spec.RepoURL) {
		return nil, permanent(v1alpha1.ReasonAuthenticationFailed, "git secret %q may not be used for %s: it is not in the Secret's %s",
			ref.Name, render.NormalizeRepoURL(run.Spec.RepoURL), v1alpha1.AnnotationAllowedRepositories)
	}
	auth, err := gitsource.AuthFromSecretData(secret.Data)
	if err != nil {
		return nil, permanent(v1alpha1.ReasonAuthenticationFailed, "git secret %q: %w", ref.Name, err)
	}
	return auth, nil
}

// repositoryAllowed matches a repository against a Secret's allow-list: patterns
// separated by commas or newlines, each a path.Match glob of the normalised URL
// (host/path: "github.com/org/*" allows every repository of org, and nothing deeper).
func repositoryAllowed(list, repoURL string) bool {
	repo := render.NormalizeRepoURL(repoURL)
	for _, p := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == '\n' }) {
		p = render.NormalizeRepoURL(strings.TrimSpace(p))
		if ok, err := path.Match(p, repo); err == nil && ok {
			return true
		}
	}
	return false
}
