package trigger

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers/metrics"
	"github.com/flow-ci/flow-ci/controllers/sources"
	"github.com/flow-ci/flow-ci/internal/changes"
	"github.com/flow-ci/flow-ci/internal/gitsource"
	"github.com/flow-ci/flow-ci/internal/render"
	"github.com/flow-ci/flow-ci/internal/shorten"
	"github.com/flow-ci/flow-ci/internal/triggerstate"
)

// startPoll reads the git Secret and starts an ls-remote on the pool. A Secret that is
// missing, malformed or may not be used for the repository is reported on Ready and
// retried at the next interval.
func (r *Reconciler) startPoll(ctx context.Context, p *pass) error {
	trig := p.trig
	auth, _, err := sources.Secrets{Reader: r.APIReader}.GitAuth(ctx, trig.Namespace, trig.Spec.GitSecretRef, trig.Spec.RepoURL)
	if err != nil {
		if !errors.Is(err, sources.ErrSecretNotFound) && !sources.Permanent(err) {
			return err
		}
		r.polls.markPolled(trig.UID, p.now)
		setReady(trig, metav1.ConditionFalse, sources.Reason(err), err.Error())
		trig.Status.ObservedGeneration = trig.Generation
		p.wakeAt(p.now.Add(trig.Spec.IntervalOrDefault()))
		return nil
	}
	spec, prev, prevPulls, approved := trig.Spec.DeepCopy(), trig.Status.DeepCopy().Branches, trig.Status.DeepCopy().PullRequests, approvals(trig)
	token, tokenErr := r.pullsToken(ctx, trig)
	if tokenErr != nil && !errors.Is(tokenErr, sources.ErrSecretNotFound) && !sources.Permanent(tokenErr) {
		return tokenErr
	}
	r.polls.start(trig, p.now, trig.Annotations[v1alpha1.AnnotationRequestedAt], func(ctx context.Context) (found, error) {
		f, err := r.list(ctx, spec, auth, token, tokenErr)
		if err != nil || len(spec.Paths)+len(spec.IgnorePaths) == 0 {
			return f, err
		}
		f.skips = r.filterHeads(ctx, spec, prev, f.heads, auth)
		r.filterPulls(ctx, spec, prevPulls, approved, &f, auth)
		return f, nil
	})
	return nil
}

// maxFilteredHeads bounds the new heads one poll compares (each is up to three
// upload-pack calls within the read budget); any more in the same poll are built.
const maxFilteredHeads = 10

// filterHeads applies the trigger's path filters to the heads a poll would build, on the
// poll's pool and within its time: each new head is compared with its branch's last
// successful build. A head whose changes cannot be read, or that the poll has no time
// or budget left for, is built (a filter must never lose a build); it returns the heads
// not to build, by skipKey, with why.
func (r *Reconciler) filterHeads(ctx context.Context, spec *v1alpha1.PipelineTriggerSpec, prev []v1alpha1.TriggerBranchStatus,
	heads map[string]string, auth *gitsource.Auth) map[string]string {
	matched, err := triggerstate.MatchBranches(spec.Branches, heads, v1alpha1.MaxTriggerBranches)
	if err != nil {
		return nil // handlePoll reports it
	}
	filter := changes.Filter{Paths: spec.Paths, IgnorePaths: spec.IgnorePaths}
	if filter.Validate() != nil {
		return nil // handlePoll reports it
	}
	skips := map[string]string{}
	for i, h := range triggerstate.PlanPoll(prev, matched, spec.OnNewBranch).Build {
		if i >= maxFilteredHeads || ctx.Err() != nil {
			break // the rest are built: a filter never loses a build
		}
		base := triggerstate.ChangesBase(prev, h.Branch)
		files, all, err := r.Git.ChangedFiles(ctx, spec.RepoURL, base, h.Commit, auth)
		if err != nil {
			continue
		}
		if build, why := filter.Decide(files, all); !build {
			skips[skipKey(h.Branch, h.Commit)] = fmt.Sprintf("%s since %s", why, shorten.SHA(base))
		}
	}
	return skips
}

// budgetRetry is how soon a trigger whose namespace spent its run budget looks again.
const budgetRetry = time.Minute

func (r *Reconciler) budgetMessage() string {
	return fmt.Sprintf("the triggers of this namespace started %d runs in the last hour, as many as the operator's --trigger-runs-per-hour allows; new heads are built when the budget frees", r.RunsPerHour)
}

// handlePoll acts on a finished poll: on an error it sets Ready and records the due
// schedule slots as skipped, so that a failing server is not polled again at once for
// them; otherwise it starts a run for each new head and each due slot the poll is
// recent enough for. A head it could not build (a conflict, a spent budget) keeps its
// old entry, so a later poll builds it.
func (r *Reconciler) handlePoll(ctx context.Context, p *pass, done *poll, slots []triggerstate.Slot) error {
	trig, st := p.trig, &p.trig.Status
	started := metav1.NewTime(done.started)
	st.LastPollTime = &started
	st.ObservedGeneration = trig.Generation
	if done.poke != "" {
		st.LastHandledRequestedAt = done.poke
	}
	metrics.ObservePoll(trig.Namespace, done.err)
	if done.err != nil {
		reason := v1alpha1.ReasonPollFailed
		if gitsource.IsPermanent(done.err) {
			reason = sources.Reason(done.err)
		}
		setReady(trig, metav1.ConditionFalse, reason, done.err.Error())
		r.skipSlots(p, slots, "its poll failed")
		return nil
	}
	heads, err := triggerstate.MatchBranches(trig.Spec.Branches, done.heads, v1alpha1.MaxTriggerBranches)
	if err != nil {
		setReady(trig, metav1.ConditionFalse, v1alpha1.ReasonTooManyBranches, err.Error())
		r.skipSlots(p, slots, "more branches match than a trigger tracks")
		return nil
	}
	if err := (changes.Filter{Paths: trig.Spec.Paths, IgnorePaths: trig.Spec.IgnorePaths}).Validate(); err != nil {
		setReady(trig, metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec, "spec.paths or spec.ignorePaths: "+err.Error())
		r.skipSlots(p, slots, "its path filters are invalid")
		return nil
	}
	base := func(branch string) string { return triggerstate.ChangesBase(st.Branches, branch) }
	plan := triggerstate.PlanPoll(st.Branches, heads, trig.Spec.OnNewBranch)
	st.Branches = plan.Branches
	var o outcome
	for _, h := range plan.Build {
		if why, skip := done.skips[skipKey(h.Branch, h.Commit)]; skip && done.generation == trig.Generation {
			triggerstate.RecordSkip(st, h)
			p.event(corev1.EventTypeNormal, v1alpha1.EventHeadSkipped, "branch %s at %s not built: %s", h.Branch, shorten.SHA(h.Commit), why)
			continue
		}
		name := render.TriggeredRunName(trig, h.Branch, h.Commit)
		run := render.TriggeredRun(trig, name, h.Branch, h.Commit, "")
		render.SetChangesBase(run, base(h.Branch))
		created, err := r.createRun(ctx, p, run)
		if err != nil {
			return err
		}
		if o.note(created, name) {
			triggerstate.RecordRun(st, h, name)
		}
	}
	for _, s := range slots {
		if err := r.runSlot(ctx, p, done, s, &o); err != nil {
			return err
		}
	}
	if err := r.handlePulls(ctx, p, done, &o); err != nil {
		return err
	}
	switch {
	case o.noBudget:
		setReady(trig, metav1.ConditionFalse, v1alpha1.ReasonRunBudgetExhausted, r.budgetMessage())
		p.wakeAt(p.now.Add(budgetRetry))
	case o.conflict != "":
		setReady(trig, metav1.ConditionFalse, v1alpha1.ReasonRunConflict,
			fmt.Sprintf("PipelineRun %s exists and is not this trigger's: its head is not built; delete or rename it", o.conflict))
	default:
		setReady(trig, metav1.ConditionTrue, v1alpha1.ReasonPolling,
			fmt.Sprintf("%d branches tracked; polling every %s", len(st.Branches), trig.Spec.IntervalOrDefault()))
	}
	return nil
}

// outcome gathers what a poll's creations could not do.
type outcome struct {
	conflict string
	noBudget bool
}

// note records a creation's result and reports whether the run exists.
func (o *outcome) note(c created, name string) bool {
	switch c {
	case runConflict:
		o.conflict = name
	case runNoBudget:
		o.noBudget = true
	}
	return c == runCreated
}

// skipSlots records every due slot as handled without a run, with an event.
func (r *Reconciler) skipSlots(p *pass, slots []triggerstate.Slot, why string) {
	for _, s := range slots {
		if s.Time.IsZero() {
			continue
		}
		triggerstate.RecordSlot(&p.trig.Status, s.Schedule.Name, s.Time, s.Next, "", "")
		p.event(corev1.EventTypeWarning, v1alpha1.EventSlotSkipped, "schedule %s skipped its slot at %s: %s",
			s.Schedule.Name, s.Time.UTC().Format(time.RFC3339), why)
	}
}

// runSlot handles one schedule's decision with a poll that started after its slot. A
// slot the budget cannot pay for is skipped: its time has passed, and a later run
// would be a run nobody scheduled.
func (r *Reconciler) runSlot(ctx context.Context, p *pass, done *poll, s triggerstate.Slot, o *outcome) error {
	st := &p.trig.Status
	switch {
	case s.Time.IsZero() && s.Skipped:
		triggerstate.RecordSlot(st, s.Schedule.Name, p.now, s.Next, "", "")
		return nil
	case s.Time.IsZero(), done.started.Before(s.Time):
		return nil // nothing due, or the poll predates the slot: the next one runs it
	}
	commit, ok := done.heads[s.Schedule.Branch]
	if !ok || (s.Schedule.OnlyIfChanged && triggerstate.AlreadyBuilt(st, p.trig.Spec.Schedules, s.Schedule.Branch, commit)) {
		triggerstate.RecordSlot(st, s.Schedule.Name, s.Time, s.Next, "", "")
		return nil
	}
	name := render.ScheduledRunName(p.trig, s.Schedule.Name, s.Time)
	created, err := r.createRun(ctx, p, render.TriggeredRun(p.trig, name, s.Schedule.Branch, commit, s.Schedule.Name))
	if err != nil {
		return err
	}
	switch o.note(created, name); created {
	case runCreated:
		triggerstate.RecordSlot(st, s.Schedule.Name, s.Time, s.Next, name, commit)
	case runNoBudget:
		r.skipSlots(p, []triggerstate.Slot{s}, "the namespace's run budget (--trigger-runs-per-hour) is spent")
	}
	return nil
}
