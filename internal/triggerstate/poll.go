// Package triggerstate holds every decision of the PipelineTrigger controller as pure
// functions: which branches a poll tracks, which heads start a run, which schedule slots
// are due, when to poll next, and how a trigger's status changes when a run is created
// or ends. The controller does the I/O; nothing here reads a clock or the network.
package triggerstate

import (
	"fmt"
	"hash/fnv"
	"path"
	"sort"
	"time"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/shorten"
)

// Head is a branch and the commit at its tip.
type Head struct {
	Branch, Commit string
}

// MatchBranches returns the heads whose branch matches one of the globs (path.Match:
// '*' does not cross '/'), sorted by branch. More than max matches is an error, so a
// broad glob cannot make one trigger start hundreds of runs.
func MatchBranches(globs []string, heads map[string]string, max int) ([]Head, error) {
	var out []Head
	for branch, commit := range heads {
		for _, g := range globs {
			if ok, err := path.Match(g, branch); err == nil && ok {
				out = append(out, Head{Branch: branch, Commit: commit})
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Branch < out[j].Branch })
	if len(out) > max {
		return nil, fmt.Errorf("%d branches match %v, more than the %d a trigger tracks; narrow spec.branches", len(out), globs, max)
	}
	return out, nil
}

// PollPlan is what one poll's heads mean for a trigger.
type PollPlan struct {
	// Build are the heads to start a run for, in branch order.
	Build []Head
	// Branches is status.branches after the poll, before the new runs are recorded: a
	// branch that went away is dropped, so it is no longer tracked; a branch first seen
	// with onNewBranch Skip records its head without a run.
	Branches []v1alpha1.TriggerBranchStatus
}

// PlanPoll compares a poll's matching heads with what the trigger last saw. A branch
// whose head changed is built once at its newest head (pushes between two polls are
// never built on their own); a new branch is built or skipped by onNewBranch. A head
// to build keeps its old entry until RecordRun, so a failed create is retried by the
// next poll.
func PlanPoll(prev []v1alpha1.TriggerBranchStatus, heads []Head, onNew v1alpha1.NewBranchPolicy) PollPlan {
	seen := map[string]v1alpha1.TriggerBranchStatus{}
	for _, b := range prev {
		seen[b.Name] = b
	}
	var plan PollPlan
	for _, h := range heads {
		old, known := seen[h.Branch]
		switch {
		case !known && onNew == v1alpha1.NewBranchSkip:
			plan.Branches = append(plan.Branches, v1alpha1.TriggerBranchStatus{Name: h.Branch, Commit: h.Commit})
		case !known:
			plan.Branches = append(plan.Branches, v1alpha1.TriggerBranchStatus{Name: h.Branch})
			plan.Build = append(plan.Build, h)
		case old.Commit != h.Commit:
			plan.Branches = append(plan.Branches, old)
			plan.Build = append(plan.Build, h)
		default:
			plan.Branches = append(plan.Branches, old)
		}
	}
	return plan
}

// RecordRun notes in status that run was created for h: the branch's head, its last run
// (Pending until it ends) and the trigger's newest run.
func RecordRun(st *v1alpha1.PipelineTriggerStatus, h Head, run string) {
	for i := range st.Branches {
		if b := &st.Branches[i]; b.Name == h.Branch {
			b.Commit, b.LastRun, b.LastRunCommit, b.LastRunPhase = h.Commit, run, h.Commit, v1alpha1.PhasePending
		}
	}
	recordNewest(st, run, h.Commit)
}

func recordNewest(st *v1alpha1.PipelineTriggerStatus, run, commit string) {
	st.LastRun, st.LastCommit, st.LastRunPhase = run, shorten.SHA(commit), v1alpha1.PhasePending
}

// RecordPhases copies the phase of each finished run the status names (as a branch's,
// a schedule's or the trigger's last run). phases maps run names to their phase;
// a run that is not finished, or not in phases, is left as written. It reports whether
// anything changed.
func RecordPhases(st *v1alpha1.PipelineTriggerStatus, phases map[string]v1alpha1.PipelineRunPhase) bool {
	changed := false
	set := func(run string, phase *v1alpha1.PipelineRunPhase) {
		if p, ok := phases[run]; ok && run != "" && p.IsFinished() && *phase != p {
			*phase, changed = p, true
		}
	}
	for i := range st.Branches {
		b := &st.Branches[i]
		set(b.LastRun, &b.LastRunPhase)
		if b.LastRunPhase == v1alpha1.PhaseSucceeded && b.LastRunCommit != "" && b.LastSucceededCommit != b.LastRunCommit {
			b.LastSucceededCommit, changed = b.LastRunCommit, true
		}
	}
	for i := range st.Schedules {
		set(st.Schedules[i].LastRun, &st.Schedules[i].LastRunPhase)
	}
	set(st.LastRun, &st.LastRunPhase)
	return changed
}

// RecordSkip notes in status that h was seen and not built (a path filter): the branch's
// head moves on, its last run and last success stay, so the next head is compared with
// the same base and the changes of the skipped head still count then.
func RecordSkip(st *v1alpha1.PipelineTriggerStatus, h Head) {
	for i := range st.Branches {
		if b := &st.Branches[i]; b.Name == h.Branch {
			b.Commit = h.Commit
		}
	}
}

// ChangesBase is the commit a new head of branch is compared with by path filters: the
// branch's newest run that succeeded, or "" (everything counts as changed).
func ChangesBase(branches []v1alpha1.TriggerBranchStatus, branch string) string {
	for _, b := range branches {
		if b.Name == branch {
			return b.LastSucceededCommit
		}
	}
	return ""
}

// AlreadyBuilt reports whether the trigger started a run for commit of branch: the
// branch's last run, or a schedule's last run of that branch.
func AlreadyBuilt(st *v1alpha1.PipelineTriggerStatus, schedules []v1alpha1.TriggerSchedule, branch, commit string) bool {
	for _, b := range st.Branches {
		if b.Name == branch && b.LastRun != "" && b.LastRunCommit == commit {
			return true
		}
	}
	for _, s := range schedules {
		if s.Branch != branch {
			continue
		}
		if ss := ScheduleStatus(st, s.Name); ss != nil && ss.LastRun != "" && ss.LastRunCommit == commit {
			return true
		}
	}
	return false
}

// NextPoll is when to poll after a poll at last: the interval plus a jitter of up to a
// tenth of it, fixed per trigger and poll, so that triggers created together spread out
// and a restarted operator polls each at the same time it would have.
func NextPoll(last time.Time, interval time.Duration, uid string) time.Time {
	h := fnv.New64a()
	_, _ = fmt.Fprintf(h, "%s\x00%d", uid, last.Unix())
	jitter := time.Duration(0)
	if tenth := int64(interval / 10); tenth > 0 {
		jitter = time.Duration(h.Sum64() % uint64(tenth))
	}
	return last.Add(interval + jitter)
}

// CatchUpWindow is the most a poll that fell due while no replica led is put off.
const CatchUpWindow = 30 * time.Second

// CatchUp is when to make a poll due at next, for a replica leading since leading. A poll
// that fell due before that (during a failover or a restart, when the old leader's timers
// died with it) is made within a window after it, at an offset fixed per trigger, so the
// triggers that came due during the gap do not all poll in the new leader's first
// second. The window is CatchUpWindow, or the interval when that is shorter, so no
// trigger waits longer than it would have between two polls.
func CatchUp(next, leading time.Time, interval time.Duration, uid string) time.Time {
	window := min(CatchUpWindow, interval)
	if !next.Before(leading) || window <= 0 {
		return next
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(uid))
	return leading.Add(time.Duration(h.Sum64() % uint64(window)))
}
