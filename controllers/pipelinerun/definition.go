package pipelinerun

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/pipeline"
	"github.com/flow-ci/flow-ci/internal/render"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

// reconcileDefinition pins the commit and the pipeline file. A new run's git I/O runs
// on the fetcher's pool, off the reconcile workers; when it is done, a pass stores the
// file in an immutable ConfigMap owned by the run. Every later pass, and any restarted
// controller, uses that ConfigMap (read once, then memoised) and never resolves the
// branch again. ConfigMaps are not cached, so no tenant's ConfigMap costs the operator
// memory. It sets the commit, the pipeline's name, digest and planned steps (runstate.Pin),
// and for a pinned revision whether it is on its branch; it is done while the fetch
// runs. A bad file ends the run (InvalidDefinition) before any child exists.
func (r *Reconciler) reconcileDefinition(ctx context.Context, s *scope) (bool, error) {
	run := s.run
	p, ok := r.defs.get(run.UID)
	if !ok {
		var err error
		if p, err = r.loadDefinition(ctx, s); err != nil || p == nil {
			return s.fetching, err
		}
		// The graph depends only on the file, the run's branch (fixed by now), its
		// Secrets (an immutable spec) and its event (labels only the operator may add,
		// change or remove).
		p.graph = runstate.GraphOf(&p.def.Pipeline, run.Status.Branch, r.Lifecycle.maxParallelSteps())
		p.graph.Event, p.graph.Exposed = v1alpha1.EventOf(run), run.Spec.SecretNames()
		r.defs.put(p)
	}
	if run.Status.DefinitionDigest != "" && run.Status.DefinitionDigest != p.def.Digest {
		return false, permanent(v1alpha1.ReasonInvalidDefinition, "the pinned definition changed: status has %s, ConfigMap %q has %s",
			run.Status.DefinitionDigest, render.DefinitionName(run), p.def.Digest)
	}
	first := run.Status.DefinitionDigest == ""
	if first {
		if err := r.checkDefinition(run, &p.def.Pipeline); err != nil {
			return false, err
		}
	}
	runstate.Pin(run, p.commit, p.def)
	if first {
		runstate.SkipUnchanged(run, &p.def.Pipeline, s.changes)
	}
	s.def, s.graph = p.def, p.graph
	return false, nil
}

// loadDefinition reads the run's definition ConfigMap and parses it, or, when there is
// none yet, fetches and stores it (storeDefinition): nil while the fetch runs.
func (r *Reconciler) loadDefinition(ctx context.Context, s *scope) (*pinned, error) {
	run := s.run
	cm := &corev1.ConfigMap{}
	var err error
	if r.fetches.state(run.UID) != nil || s.fresh {
		// A fetch runs, so the ConfigMap was missing when it started; or the run is new
		// and nothing of it was written yet. Should one exist after all, the create
		// finds it.
		err = apierrors.NewNotFound(corev1.Resource("configmaps"), render.DefinitionName(run))
	} else {
		err = r.APIReader.Get(ctx, client.ObjectKey{Namespace: run.Namespace, Name: render.DefinitionName(run)}, cm)
	}
	switch {
	case err == nil:
		if err := notOurs(cm, run); err != nil {
			return nil, err
		}
	case apierrors.IsNotFound(err):
		if cm, err = r.storeDefinition(ctx, s); err != nil || cm == nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("reading the definition: %w", err)
	}
	raw := cm.Data[v1alpha1.DefinitionKey]
	def, err := pipeline.Parse([]byte(raw))
	if err != nil {
		return nil, permanent(v1alpha1.ReasonInvalidDefinition, "%s: %v", run.Spec.PipelinePath, err)
	}
	def.Pipeline = render.PipelineOf(run, def.Pipeline)
	return &pinned{run: run.UID, commit: cm.Annotations[v1alpha1.AnnotationCommit], def: def, size: max(int64(len(raw)), def.Pipeline.Footprint())}, nil
}

// checkDefinition applies what the operator and the run's spec allow to a file the
// parser accepted, once, before the run pins it: a run that started keeps going under
// flags changed since.
func (r *Reconciler) checkDefinition(run *v1alpha1.PipelineRun, p *pipeline.Pipeline) error {
	if err := render.CheckStepResources(p, r.Render); err != nil {
		return permanent(v1alpha1.ReasonInvalidDefinition, "%s: %v", run.Spec.PipelinePath, err)
	}
	if slices.Contains(run.Spec.Workspace.AccessModes, corev1.ReadWriteOncePod) {
		if a, b, ok := p.Parallel(); ok {
			return permanent(v1alpha1.ReasonInvalidSpec,
				"workspace.accessModes ReadWriteOncePod mounts the workspace in one pod at a time, but steps %q and %q may run at the same time; use ReadWriteOnce or ReadWriteMany",
				a, b)
		}
	}
	return nil
}

// storeDefinition starts the run's fetch, or, once it is done, stores what it found in
// the definition ConfigMap. It returns a nil ConfigMap while the fetch runs (s.fetching).
// When the ConfigMap already exists (a stale cache, or a restart between create and
// status patch) the stored one wins, so a branch that moved meanwhile cannot change the
// run; its owner reference can be forged, so it wins only if it holds exactly the file
// at the commit it names, which a second job on the fetch pool checks against git (never
// a reconcile worker: the server may be slow or silent).
func (r *Reconciler) storeDefinition(ctx context.Context, s *scope) (*corev1.ConfigMap, error) {
	run := s.run
	job := r.fetches.state(run.UID)
	if job == nil || !job.done {
		if job == nil {
			r.fetches.start(run, run.Status.StartTime.Time, r.fetchFunc(run.DeepCopy(), run.Status.StartTime.Time))
		}
		s.fetching = true
		return nil, nil
	}
	res := job.result
	if res.err != nil {
		r.fetches.forget(run.UID) // a transient error is retried with a new fetch
		if res.commit != "" {
			runstate.PinCommit(run, res.commit) // so the user sees which file was rejected
		}
		return nil, res.err
	}
	if run.Spec.Revision != "" {
		runstate.PlaceRevision(run, !res.detached)
	}
	s.changes = res.changes
	cm := render.RenderDefinition(run, res.commit, res.raw)
	if err := r.ensureChild(ctx, run, cm); err != nil {
		return nil, err
	}
	if stored := cm.Data[v1alpha1.DefinitionKey]; stored != string(res.raw) {
		// Verify the stored file on the pool; the next pass adopts it with the result.
		r.fetches.forget(run.UID)
		r.fetches.start(run, run.Status.StartTime.Time, r.verifyFunc(run.DeepCopy(), cm.DeepCopy(), res))
		s.fetching = true
		return nil, nil
	}
	r.fetches.release(run.UID)
	return cm, nil
}

// verifyFunc checks an existing definition ConfigMap against git, for the fetch pool:
// it happens only after a restart that lost a status write, or to a forged ConfigMap. Its
// result is the stored file at the commit the ConfigMap names, which the next pass
// creates again and so finds equal, or a ChildConflict.
func (r *Reconciler) verifyFunc(run *v1alpha1.PipelineRun, cm *corev1.ConfigMap, fetchedRes fetched) func(context.Context, time.Duration) fetched {
	return func(ctx context.Context, waited time.Duration) fetched {
		auth, _, err := r.gitAuth(ctx, run)
		if err != nil {
			return fetched{err: err}
		}
		gctx, cancel := r.gitContext(ctx, run.Status.StartTime.Time, waited, run)
		defer cancel()
		at := cm.Annotations[v1alpha1.AnnotationCommit]
		want, err := r.Source.ReadFile(gctx, run.Spec.RepoURL, at, run.Spec.PipelinePath, auth)
		if err != nil {
			return fetched{err: classifyGitError(err)}
		}
		stored := cm.Data[v1alpha1.DefinitionKey]
		if string(want) != stored {
			return fetched{err: permanent(v1alpha1.ReasonChildConflict,
				"ConfigMap %q does not hold %s as it is at commit %q; it was left untouched", cm.Name, run.Spec.PipelinePath, at)}
		}
		// A pinned revision is the same commit in both (its check carries over); a branch's
		// head may have moved since the ConfigMap was made, and a branch run is never detached.
		return fetched{commit: at, raw: []byte(stored), detached: fetchedRes.detached && run.Spec.Revision != ""}
	}
}
