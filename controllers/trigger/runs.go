package trigger

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers/metrics"
	"github.com/flow-ci/flow-ci/internal/render"
	"github.com/flow-ci/flow-ci/internal/runstate"
	"github.com/flow-ci/flow-ci/internal/triggerstate"
)

// DefaultRunsPerHour is --trigger-runs-per-hour: the runs the triggers of one
// namespace may start in an hour, a budget no push-driven team reaches and a schedule
// or glob gone wrong does.
const DefaultRunsPerHour = 300

// created is what createRun did.
type created int

const (
	runCreated  created = iota // created now, or by an earlier pass whose status write was lost
	runConflict                // a run of that name exists and is not this trigger's: left alone
	runNoBudget                // the namespace's --trigger-runs-per-hour is spent
)

// createRun creates a run of the trigger and records it in status.runs, the list the
// commit status reporter trusts. A run of that name that exists already is adopted only
// when the trigger controls it (by UID) and it is exactly the run the trigger would
// create (render.SameTriggeredRun): then an earlier pass created it and lost its status
// write. Any other object of that name is a conflict, left alone.
func (r *Reconciler) createRun(ctx context.Context, p *pass, run *v1alpha1.PipelineRun) (created, error) {
	if !r.budget.take(run.Namespace, p.now, r.RunsPerHour, func() ([]time.Time, error) { return r.recentRuns(ctx, run.Namespace, p.now) }) {
		return runNoBudget, nil
	}
	err := r.Client.Create(ctx, run)
	if err == nil {
		cause := "push"
		switch {
		case run.Labels[v1alpha1.LabelRerunOf] != "":
			cause = "rerun"
		case run.Labels[v1alpha1.LabelSchedule] != "":
			cause = "schedule"
		case run.Labels[v1alpha1.LabelPullRequest] != "":
			cause = "pull_request"
		}
		metrics.ObserveTriggered(run.Namespace, cause)
		p.event(corev1.EventTypeNormal, v1alpha1.EventTriggered, "started PipelineRun %s", run.Name)
		log.FromContext(ctx).Info("started a run", "run", run.Name, "branch", run.Spec.Branch, "commit", run.Spec.Revision)
		triggerstate.RecordCreated(&p.trig.Status, run.Name, string(run.UID))
		return runCreated, nil
	}
	r.budget.giveBack(run.Namespace)
	if !apierrors.IsAlreadyExists(err) {
		return 0, fmt.Errorf("creating PipelineRun %s: %w", run.Name, err)
	}
	existing := &v1alpha1.PipelineRun{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(run), existing); err != nil {
		return 0, fmt.Errorf("reading PipelineRun %s: %w", run.Name, err)
	}
	if ref := metav1.GetControllerOf(existing); ref == nil || ref.UID != p.trig.UID || !render.SameTriggeredRun(existing, run) {
		return runConflict, nil
	}
	triggerstate.RecordCreated(&p.trig.Status, existing.Name, string(existing.UID))
	return runCreated, nil
}

// recentRuns are the creation times, oldest first, of the runs that triggers of the
// namespace created in the hour before now, from the cache: what the budget starts
// from after a restart.
func (r *Reconciler) recentRuns(ctx context.Context, ns string, now time.Time) ([]time.Time, error) {
	list := &v1alpha1.PipelineRunList{}
	if err := r.Client.List(ctx, list, client.InNamespace(ns), client.HasLabels{v1alpha1.LabelTriggerUID}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing the namespace's triggered runs: %w", err)
	}
	var out []time.Time
	for i := range list.Items {
		if at := list.Items[i].CreationTimestamp.Time; now.Sub(at) < time.Hour {
			out = append(out, at)
		}
	}
	slices.SortFunc(out, time.Time.Compare)
	return out, nil
}

// runBudget is the sliding hour of run creations per namespace. It counts in memory,
// so runs deleted right after they end (a history limit of 0) still count; after a
// restart it starts from the runs the cache holds.
type runBudget struct {
	mu      sync.Mutex
	created map[string][]time.Time // per namespace, oldest first
}

// take spends one run of ns's budget at now, or reports that it is spent. seed gives
// the recent creations of a namespace this process has not seen yet, oldest first.
func (b *runBudget) take(ns string, now time.Time, perHour int, seed func() ([]time.Time, error)) bool {
	if perHour <= 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.created == nil {
		b.created = map[string][]time.Time{}
	}
	times, seen := b.created[ns]
	if !seen {
		times, _ = seed() // unreadable: count from now on
	}
	for len(times) > 0 && now.Sub(times[0]) >= time.Hour {
		times = times[1:]
	}
	if len(times) >= perHour {
		b.created[ns] = times
		return false
	}
	b.created[ns] = append(times, now)
	return true
}

// giveBack returns the run take spent last for ns: its create failed.
func (b *runBudget) giveBack(ns string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if times := b.created[ns]; len(times) > 0 {
		b.created[ns] = times[:len(times)-1]
	}
}

// reconcileRuns records the phase of the trigger's runs that ended, and deletes the
// oldest finished ones beyond the history limits, per branch and per schedule.
func (r *Reconciler) reconcileRuns(ctx context.Context, p *pass) error {
	list := &v1alpha1.PipelineRunList{}
	if err := r.Client.List(ctx, list, client.InNamespace(p.trig.Namespace),
		client.MatchingLabels{v1alpha1.LabelTriggerUID: string(p.trig.UID)}); err != nil {
		return fmt.Errorf("listing the trigger's runs: %w", err)
	}
	phases := map[string]v1alpha1.PipelineRunPhase{}
	groups := map[string][]*v1alpha1.PipelineRun{}
	for i := range list.Items {
		run := &list.Items[i]
		if ref := metav1.GetControllerOf(run); ref == nil || ref.UID != p.trig.UID {
			continue // labelled like ours, but not ours
		}
		phases[run.Name] = run.Status.Phase
		if run.Status.Phase.IsFinished() && run.DeletionTimestamp.IsZero() {
			key := "branch\x00" + run.Spec.Branch
			if s := run.Labels[v1alpha1.LabelSchedule]; s != "" {
				key = "schedule\x00" + s
			}
			if n := run.Labels[v1alpha1.LabelPullRequest]; n != "" {
				key = "pull\x00" + n
			}
			groups[key] = append(groups[key], run)
		}
	}
	triggerstate.RecordPhases(&p.trig.Status, phases)
	for _, runs := range groups {
		for _, old := range runstate.BeyondHistory(runs, r.historyLimits(p.trig)) {
			log.FromContext(ctx).Info("deleting a run beyond the trigger's history limit", "deleted", old.Name)
			if err := r.Client.Delete(ctx, old, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("deleting run %s beyond the history limit: %w", old.Name, err)
			}
		}
	}
	return nil
}

func (r *Reconciler) historyLimits(t *v1alpha1.PipelineTrigger) runstate.HistoryLimits {
	l := runstate.HistoryLimits{Succeeded: r.SuccessfulHistoryLimit, Failed: r.FailedHistoryLimit}
	if v := t.Spec.SuccessfulHistoryLimit; v != nil {
		l.Succeeded = int(*v)
	}
	if v := t.Spec.FailedHistoryLimit; v != nil {
		l.Failed = int(*v)
	}
	return l
}
