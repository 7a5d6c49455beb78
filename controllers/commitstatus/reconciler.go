// Package commitstatus is the commit status controller: it posts the state of the runs a
// PipelineTrigger with a report created (pending from admission, then the result, each
// state once) to GitHub, GitLab or Gitea, with the trigger's token, for the trigger's
// repository. It is its own controller, posting off its workers on a pool shared fairly
// between namespaces, so a slow or failing forge never holds up a run.
package commitstatus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers/metrics"
	"github.com/flow-ci/flow-ci/controllers/sources"
	"github.com/flow-ci/flow-ci/internal/forge"
	"github.com/flow-ci/flow-ci/internal/triggerstate"
)

// DefaultConcurrency is --report-concurrency: commit statuses posted at once.
const DefaultConcurrency = 4

// giveUpAfter stops retrying a report this long after the run ended: the forge was
// down for that long, and the run's own status still tells its result.
const giveUpAfter = 24 * time.Hour

// Poster posts one commit status (forge.Client).
type Poster interface {
	Post(ctx context.Context, p forge.Provider, baseURL, repoURL, token string, s forge.Status) error
}

// Reconciler reports triggered runs' states to their forge.
type Reconciler struct {
	Client client.Client
	// APIReader reads the report Secret (get only, never cached).
	APIReader client.Reader
	Recorder  events.EventRecorder
	Forge     Poster
	// Concurrency is how many posts run at once (DefaultConcurrency when 0).
	Concurrency int

	posts *poster
}

// Recorded is the AnnotationCommitStatus value: what was last posted for the run.
type Recorded struct {
	Context string      `json:"context"`
	State   forge.State `json:"state"`
	// Error is set when the forge refused the state for good; it is not retried.
	Error string `json:"error,omitempty"`
}

// Reconcile records a finished post of the run, then starts the post of its current
// state when it differs from the one recorded on the run. Posts run on the poster's
// pool, never on a reconcile worker; a finished one wakes the run again.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	run := &v1alpha1.PipelineRun{}
	if err := r.Client.Get(ctx, req.NamespacedName, run); err != nil {
		if apierrors.IsNotFound(err) {
			r.posts.forget(req.NamespacedName)
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	trig, res, ok := r.triggerOf(ctx, run)
	if !ok {
		return res, nil
	}
	spec := trig.Spec.Report
	rec := recorded(run)
	if mem, ok := r.posts.remembered(run); ok && rec.State == "" {
		rec = mem
	}
	if job, busy := r.posts.take(run); busy {
		return reconcile.Result{}, nil
	} else if job != nil {
		var err error
		if rec, err = r.recordPost(ctx, run, spec.Provider, rec, job); err != nil {
			return reconcile.Result{}, err
		}
	}
	state, ok := StateToReport(run.Status.Phase)
	if !ok || rec.State == state || (rec.Error == "" && forge.SameOnForge(forge.Provider(spec.Provider), rec.State, state)) {
		return reconcile.Result{}, nil
	}
	if run.Status.CompletionTime != nil && time.Since(run.Status.CompletionTime.Time) > giveUpAfter {
		return reconcile.Result{}, nil
	}
	if rec.Context == "" {
		rec.Context = expandContext(spec.Context, run, trig)
	}
	token, err := sources.Secrets{Reader: r.APIReader}.Token(ctx, trig.Namespace, spec.SecretRef.Name, trig.Spec.RepoURL)
	if err != nil {
		return reconcile.Result{}, err
	}
	status := forge.Status{
		Commit: run.Spec.Revision, State: state, Context: rec.Context,
		Description: description(run), TargetURL: expandTarget(spec.TargetURL, run),
	}
	provider, base, repo := forge.Provider(spec.Provider), spec.URL, trig.Spec.RepoURL
	r.posts.start(run, status, func(ctx context.Context) error { return r.Forge.Post(ctx, provider, base, repo, token, status) })
	return reconcile.Result{}, nil
}

// triggerOf is the trigger that may report run: the PipelineTrigger that controls it,
// reports, and recorded creating it (trusted). Otherwise ok is false and res says when
// to look again, if ever.
func (r *Reconciler) triggerOf(ctx context.Context, run *v1alpha1.PipelineRun) (trig *v1alpha1.PipelineTrigger, res reconcile.Result, ok bool) {
	ref := metav1.GetControllerOf(run)
	if ref == nil || ref.Kind != "PipelineTrigger" || !strings.HasPrefix(ref.APIVersion, v1alpha1.GroupVersion.Group+"/") || !run.DeletionTimestamp.IsZero() {
		return nil, res, false
	}
	trig = &v1alpha1.PipelineTrigger{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: run.Namespace, Name: ref.Name}, trig); err != nil || trig.UID != ref.UID {
		return nil, res, false // the trigger is gone: nothing to report with
	}
	if trig.Spec.Report == nil {
		return nil, res, false
	}
	if trusted, retry := r.trusted(run, trig); !trusted {
		return nil, reconcile.Result{RequeueAfter: retry}, false
	}
	return trig, res, true
}

// recordPost records what a finished post sent, so it is posted once: a final state on
// the run (AnnotationCommitStatus), an interim one (pending, running) in memory only,
// since posting it again after a restart is harmless and a write per run is not. A
// refusal for good is recorded on the run with its error and an event, after the
// record. A transient failure records nothing and returns an error, so the post is
// retried with backoff. It returns the record now in force.
func (r *Reconciler) recordPost(ctx context.Context, run *v1alpha1.PipelineRun, provider string, rec Recorded, job *posted) (Recorded, error) {
	next := Recorded{Context: job.context, State: job.state}
	switch {
	case job.err == nil:
		metrics.ObserveReport(provider, "ok")
	case errors.Is(job.err, forge.ErrPermanent):
		metrics.ObserveReport(provider, "refused")
		next.Error = job.err.Error()
	default:
		metrics.ObserveReport(provider, "retry")
		log.FromContext(ctx).Info("posting the commit status failed; retrying with backoff", "state", job.state, "error", job.err.Error())
		return rec, job.err
	}
	if next.Error == "" && (next.State == forge.StatePending || next.State == forge.StateRunning) {
		r.posts.remember(run, next)
		return next, nil
	}
	if err := r.record(ctx, run, next); err != nil {
		return rec, err
	}
	r.posts.forget(types.NamespacedName{Namespace: run.Namespace, Name: run.Name})
	if next.Error != "" {
		r.Recorder.Eventf(run, nil, corev1.EventTypeWarning, v1alpha1.EventCommitStatusFailed, "Report",
			"posting %s to %s: %s", job.state, provider, next.Error)
	}
	return next, nil
}

// StateToReport is the state a run in phase reports: pending from the moment the
// operator admits or queues it, then its result. Every phase is mapped on purpose
// (forge.StateFor); a run the operator has not seen yet (no phase) reports nothing.
func StateToReport(phase v1alpha1.PipelineRunPhase) (forge.State, bool) {
	if phase == "" {
		return "", false
	}
	return forge.StateFor(phase)
}

// recordWait is how long a run may wait for its trigger to record it (status.runs)
// before the reporter gives up on it: the trigger writes that record right after it
// creates the run, so only a run the trigger did not create waits longer.
const recordWait = 2 * time.Minute

// trusted says whether the reporter may post for run with trig's token: the trigger
// recorded creating it (by UID, in status.runs), it builds the trigger's repository
// and the commit it was created for. A run that merely names the trigger as its owner
// is never reported. retry is when to look again at a run the record may not show yet.
func (r *Reconciler) trusted(run *v1alpha1.PipelineRun, trig *v1alpha1.PipelineTrigger) (ok bool, retry time.Duration) {
	if run.Spec.RepoURL != trig.Spec.RepoURL || run.Spec.Revision == "" ||
		(run.Status.Commit != "" && run.Status.Commit != run.Spec.Revision) {
		return false, 0
	}
	if triggerstate.Created(&trig.Status, string(run.UID)) {
		return true, 0
	}
	if age := time.Since(run.CreationTimestamp.Time); age < recordWait {
		return false, 5 * time.Second
	}
	return false, 0
}

func recorded(run *v1alpha1.PipelineRun) Recorded {
	var rec Recorded
	if raw := run.Annotations[v1alpha1.AnnotationCommitStatus]; raw != "" {
		_ = json.Unmarshal([]byte(raw), &rec) // a value we cannot read is posted again
	}
	return rec
}

// record writes what was posted onto the run, so each state is posted once.
func (r *Reconciler) record(ctx context.Context, run *v1alpha1.PipelineRun, rec Recorded) error {
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{v1alpha1.AnnotationCommitStatus: string(raw)}}})
	if err != nil {
		return err
	}
	if err := r.Client.Patch(ctx, run, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("recording the commit status on the run: %w", client.IgnoreNotFound(err))
	}
	return nil
}

// expandContext fills in {pipeline}, {trigger} and {schedule}.
func expandContext(tpl string, run *v1alpha1.PipelineRun, trig *v1alpha1.PipelineTrigger) string {
	if tpl == "" {
		tpl = "flow-ci/{pipeline}"
	}
	pipeline := run.Status.PipelineName
	if pipeline == "" {
		pipeline = trig.Name
	}
	sched := run.Labels[v1alpha1.LabelSchedule]
	if sched == "" {
		sched = "push"
	}
	return strings.NewReplacer("{pipeline}", pipeline, "{trigger}", trig.Name, "{schedule}", sched).Replace(tpl)
}

func expandTarget(tpl string, run *v1alpha1.PipelineRun) string {
	return strings.NewReplacer("{namespace}", run.Namespace, "{name}", run.Name).Replace(tpl)
}

// description names the run and, when it did not succeed, the reason.
func description(run *v1alpha1.PipelineRun) string {
	d := fmt.Sprintf("%s: %s", run.Name, run.Status.Phase)
	for _, c := range run.Status.Conditions {
		if c.Type == v1alpha1.ConditionSucceeded && c.Status == metav1.ConditionFalse {
			d += " (" + c.Reason + ")"
		}
	}
	return d
}
