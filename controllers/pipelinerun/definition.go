package pipelinerun

import (
	"context"
	"fmt"

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

// reconcileDefinition pins the commit and the pipeline file. The first pass resolves the
// branch, reads and validates the file, and stores it in an immutable ConfigMap owned by
// the run; every later pass, and any restarted controller, reads that ConfigMap and
// never resolves the branch again. A bad file ends the run (InvalidDefinition) before
// any child exists.
func (r *Reconciler) reconcileDefinition(ctx context.Context, s *scope) error {
	run := s.run
	cm := &corev1.ConfigMap{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: run.Namespace, Name: render.DefinitionName(run)}, cm)
	switch {
	case err == nil:
		if err := notOurs(cm, run); err != nil {
			return err
		}
	case apierrors.IsNotFound(err):
		if cm, err = r.fetchDefinition(ctx, run); err != nil {
			return err
		}
	default:
		return fmt.Errorf("reading the definition: %w", err)
	}

	commit, raw := cm.Annotations[v1alpha1.AnnotationCommit], cm.Data[v1alpha1.DefinitionKey]
	def, err := pipeline.Parse([]byte(raw))
	if err != nil {
		return permanent(v1alpha1.ReasonInvalidDefinition, "%s: %v", run.Spec.PipelinePath, err)
	}
	if run.Status.DefinitionDigest != "" && run.Status.DefinitionDigest != def.Digest {
		return permanent(v1alpha1.ReasonInvalidDefinition, "the pinned definition changed: status has %s, ConfigMap %q has %s",
			run.Status.DefinitionDigest, cm.Name, def.Digest)
	}
	runstate.Pin(run, commit, def)
	s.def = def
	return nil
}

// fetchDefinition does the git I/O: it resolves the commit, reads and validates the
// pipeline file, then stores it. When the ConfigMap already exists (a stale cache, or a
// restart between create and status patch) the stored one wins, so a branch that moved
// meanwhile cannot change the run.
func (r *Reconciler) fetchDefinition(ctx context.Context, run *v1alpha1.PipelineRun) (*corev1.ConfigMap, error) {
	auth, err := r.gitAuth(ctx, run)
	if err != nil {
		return nil, err
	}
	commit := run.Status.Commit // pinned before the ConfigMap was lost: never re-resolve
	if commit == "" {
		if commit, err = r.Source.ResolveCommit(ctx, run.Spec.RepoURL, run.Spec.Branch, run.Spec.Revision, auth); err != nil {
			return nil, classifyGitError(err)
		}
	}
	raw, err := r.Source.ReadFile(ctx, run.Spec.RepoURL, commit, run.Spec.PipelinePath, auth)
	if err != nil {
		return nil, classifyGitError(err)
	}
	if _, err := pipeline.Parse(raw); err != nil {
		// Pin the commit so the user sees which file was rejected.
		run.Status.Commit, run.Status.ShortCommit = commit, runstate.ShortSHA(commit)
		return nil, permanent(v1alpha1.ReasonInvalidDefinition, "%s at %s: %v", run.Spec.PipelinePath, runstate.ShortSHA(commit), err)
	}
	cm := render.RenderDefinition(run, commit, raw)
	// An existing ConfigMap of this run replaces ours in cm: the stored definition wins.
	if err := r.ensureChild(ctx, run, cm); err != nil {
		return nil, err
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
		return nil, fmt.Errorf("git secret %q not found", ref.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("reading git secret %q: %w", ref.Name, err)
	}
	auth, err := gitsource.AuthFromSecretData(secret.Data)
	if err != nil {
		return nil, permanent(v1alpha1.ReasonAuthenticationFailed, "git secret %q: %w", ref.Name, err)
	}
	return auth, nil
}
