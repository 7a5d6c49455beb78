// Package trigger is the PipelineTrigger controller: it polls a repository's branches
// with one ls-remote per interval, off the reconcile workers, starts one PipelineRun per
// new head and per schedule slot under a deterministic name, and records what it saw
// and how its runs ended in the trigger's status.
package trigger

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/shorten"
	"github.com/flow-ci/flow-ci/internal/triggerstate"
)

// Reconciler reconciles PipelineTriggers.
type Reconciler struct {
	// Client reads triggers and runs from the cache and writes through the API server.
	Client client.Client
	// APIReader reads the git Secret (get only, never cached) and runs the cache lacks.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Git       Lister
	// Pollers is how many polls run at once (DefaultPollers when 0).
	Pollers int
	// SuccessfulHistoryLimit and FailedHistoryLimit are the operator's defaults for
	// triggers that set none; negative keeps all.
	SuccessfulHistoryLimit, FailedHistoryLimit int
	// Clock is the time source of polls and schedules (the real clock when nil).
	Clock clock.PassiveClock
	// RunsPerHour bounds the runs the triggers of one namespace start in an hour
	// (--trigger-runs-per-hour); 0 is unlimited.
	RunsPerHour int

	polls  *poller
	budget runBudget
	// leading is when this replica's first pass ran: controllers run only on the leader,
	// so that is when it took over (triggerstate.CatchUp spreads the polls due before).
	leadOnce sync.Once
	leading  time.Time
}

// pass is what one reconcile of a trigger works on.
type pass struct {
	trig *v1alpha1.PipelineTrigger
	now  time.Time
	next time.Time // when to look at the trigger again
	// events are recorded once the pass's status is written.
	events []note
}

// note is an event of the trigger, recorded after its status write.
type note struct {
	kind, reason, text string
}

func (p *pass) event(kind, reason, format string, args ...any) {
	p.events = append(p.events, note{kind: kind, reason: reason, text: fmt.Sprintf(format, args...)})
}

func (p *pass) wakeAt(t time.Time) {
	if !t.IsZero() && (p.next.IsZero() || t.Before(p.next)) {
		p.next = t
	}
}

// Reconcile records how the trigger's runs ended, then polls when a poll is due (on
// the pool; the pass that finds the poll done acts on it), starts runs for new heads and
// due schedule slots, and writes the status once, only when it changed.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	trig := &v1alpha1.PipelineTrigger{}
	if err := r.Client.Get(ctx, req.NamespacedName, trig); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !trig.DeletionTimestamp.IsZero() {
		r.polls.forget(trig.UID)
		return reconcile.Result{}, nil
	}
	p := &pass{trig: trig, now: r.Clock.Now()}
	r.leadOnce.Do(func() { r.leading = p.now })
	before := trig.DeepCopy()
	err := r.reconcileRuns(ctx, p)
	if err == nil {
		err = r.reconcileRerun(ctx, p)
	}
	if err == nil {
		err = r.reconcilePolls(ctx, p)
	}
	if !equality.Semantic.DeepEqual(withoutPollTime(before.Status), withoutPollTime(trig.Status)) {
		if werr := r.Client.Status().Patch(ctx, trig, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); werr != nil {
			// The runs created stay (their names are deterministic); the next pass polls
			// again and finds them.
			r.polls.retryNow(trig.UID)
			if apierrors.IsConflict(werr) {
				return reconcile.Result{RequeueAfter: time.Second}, nil
			}
			return reconcile.Result{}, fmt.Errorf("writing the trigger's status: %w", werr)
		}
		for _, e := range p.events {
			r.Recorder.Eventf(trig, nil, e.kind, e.reason, "Trigger", "%s", e.text)
		}
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	if p.next.IsZero() {
		return reconcile.Result{}, nil
	}
	return reconcile.Result{RequeueAfter: max(p.next.Sub(p.now), time.Second)}, nil
}

// withoutPollTime leaves out lastPollTime: a poll that found nothing new is not written.
func withoutPollTime(st v1alpha1.PipelineTriggerStatus) v1alpha1.PipelineTriggerStatus {
	st.LastPollTime = nil
	return st
}

// reconcilePolls decides whether to poll, and acts on a finished poll.
func (r *Reconciler) reconcilePolls(ctx context.Context, p *pass) error {
	trig, st := p.trig, &p.trig.Status
	wasSuspended := readyReason(st) == v1alpha1.ReasonSuspended
	if trig.Spec.Suspend {
		r.polls.forget(trig.UID)
		if !wasSuspended {
			triggerstate.SkipSlotsUntil(st, trig.Spec.Schedules, p.now)
		}
		setReady(trig, metav1.ConditionFalse, v1alpha1.ReasonSuspended, "spec.suspend is set: nothing is polled or scheduled")
		st.ObservedGeneration = trig.Generation
		return nil
	}
	if wasSuspended {
		triggerstate.SkipSlotsUntil(st, trig.Spec.Schedules, p.now)
	}
	triggerstate.SyncSchedules(st, trig.Spec.Schedules)
	slots, err := triggerstate.DueSlots(trig.Spec.Schedules, st, trig.CreationTimestamp.Time, p.now)
	if err != nil {
		setReady(trig, metav1.ConditionFalse, v1alpha1.ReasonInvalidSchedule, err.Error())
		st.ObservedGeneration = trig.Generation
		return nil
	}
	if done := r.polls.take(trig.UID); done != nil {
		if err := r.handlePoll(ctx, p, done, slots); err != nil {
			return err
		}
		if poke(trig) != "" {
			// A poke that came while this poll ran asks for a poll after it; its
			// annotation's event was spent on a pass that found a poll in flight.
			p.wakeAt(p.now)
		}
	} else if r.pollDue(p, slots) {
		return r.startPoll(ctx, p)
	}
	if !r.polls.inFlight(trig.UID) {
		p.wakeAt(r.nextPoll(p))
		for _, s := range slots {
			p.wakeAt(s.Next)
		}
	}
	return nil
}

// nextPoll is when the trigger polls next: an interval and its jitter after the last
// poll, or, for a poll that fell due before this replica led, spread after the takeover.
func (r *Reconciler) nextPoll(p *pass) time.Time {
	trig := p.trig
	interval := trig.Spec.IntervalOrDefault()
	next := triggerstate.NextPoll(r.lastPoll(trig), interval, string(trig.UID))
	return triggerstate.CatchUp(next, r.leading, interval, string(trig.UID))
}

// lastPoll is when the trigger last polled: in this process, or as last written.
func (r *Reconciler) lastPoll(trig *v1alpha1.PipelineTrigger) time.Time {
	last := r.polls.lastPoll(trig.UID)
	if t := trig.Status.LastPollTime; t != nil && t.After(last) {
		last = t.Time
	}
	return last
}

// pollDue: the interval passed, the trigger was poked or changed, or a schedule slot is
// due that no poll since has seen.
func (r *Reconciler) pollDue(p *pass, slots []triggerstate.Slot) bool {
	trig := p.trig
	last := r.lastPoll(trig)
	switch {
	case last.IsZero(), trig.Generation != trig.Status.ObservedGeneration, poke(trig) != "":
		return true
	case !p.now.Before(r.nextPoll(p)):
		return true
	}
	for _, s := range slots {
		if !s.Time.IsZero() || s.Skipped {
			return true
		}
	}
	return false
}

// poke is the requestedAt annotation when it asks for a poll not yet handled.
func poke(trig *v1alpha1.PipelineTrigger) string {
	if v := trig.Annotations[v1alpha1.AnnotationRequestedAt]; v != trig.Status.LastHandledRequestedAt {
		return v
	}
	return ""
}

func readyReason(st *v1alpha1.PipelineTriggerStatus) string {
	if c := apimeta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady); c != nil {
		return c.Reason
	}
	return ""
}

func setReady(trig *v1alpha1.PipelineTrigger, status metav1.ConditionStatus, reason, msg string) {
	msg = shorten.Head(msg, v1alpha1.MaxMessageBytes)
	apimeta.SetStatusCondition(&trig.Status.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionReady, Status: status, Reason: reason, Message: msg, ObservedGeneration: trig.Generation,
	})
}
