package triggerstate

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

func TestMatchBranches(t *testing.T) {
	heads := map[string]string{"main": "a", "release/1": "b", "release/1/hotfix": "c", "feature-x": "d", "Main": "e"}
	cases := []struct {
		name  string
		globs []string
		max   int
		want  []Head
		err   bool
	}{
		{"exact", []string{"main"}, 50, []Head{{"main", "a"}}, false},
		{"star stays within a path segment", []string{"release/*"}, 50, []Head{{"release/1", "b"}}, false},
		{"several globs, sorted, each head once", []string{"*", "main", "release/*/*"}, 50,
			[]Head{{"Main", "e"}, {"feature-x", "d"}, {"main", "a"}, {"release/1/hotfix", "c"}}, false},
		{"nothing matches", []string{"develop"}, 50, nil, false},
		{"a malformed glob matches nothing", []string{"[main"}, 50, nil, false},
		{"more than max is an error", []string{"*", "*/*"}, 3, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := MatchBranches(c.globs, heads, c.max)
			if (err != nil) != c.err {
				t.Fatalf("err = %v, want error %v", err, c.err)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlanPoll(t *testing.T) {
	built := v1alpha1.TriggerBranchStatus{Name: "main", Commit: "a", LastRun: "r-a", LastRunCommit: "a", LastRunPhase: v1alpha1.PhaseSucceeded}
	cases := []struct {
		name      string
		prev      []v1alpha1.TriggerBranchStatus
		heads     []Head
		onNew     v1alpha1.NewBranchPolicy
		wantBuild []Head
		wantSt    []v1alpha1.TriggerBranchStatus
	}{
		{name: "unchanged head builds nothing", prev: []v1alpha1.TriggerBranchStatus{built}, heads: []Head{{"main", "a"}},
			onNew: v1alpha1.NewBranchBuild, wantSt: []v1alpha1.TriggerBranchStatus{built}},
		{name: "a new head is built once, at its newest commit", prev: []v1alpha1.TriggerBranchStatus{built}, heads: []Head{{"main", "c"}},
			onNew: v1alpha1.NewBranchBuild, wantBuild: []Head{{"main", "c"}}, wantSt: []v1alpha1.TriggerBranchStatus{built}},
		{name: "first sight with Build", heads: []Head{{"main", "a"}, {"release/1", "b"}}, onNew: v1alpha1.NewBranchBuild,
			wantBuild: []Head{{"main", "a"}, {"release/1", "b"}},
			wantSt:    []v1alpha1.TriggerBranchStatus{{Name: "main"}, {Name: "release/1"}}},
		{name: "first sight with Skip records the head without a run", prev: []v1alpha1.TriggerBranchStatus{built},
			heads: []Head{{"main", "a"}, {"release/2", "f"}}, onNew: v1alpha1.NewBranchSkip,
			wantSt: []v1alpha1.TriggerBranchStatus{built, {Name: "release/2", Commit: "f"}}},
		{name: "a skipped branch builds its next head", prev: []v1alpha1.TriggerBranchStatus{{Name: "release/2", Commit: "f"}},
			heads: []Head{{"release/2", "g"}}, onNew: v1alpha1.NewBranchSkip, wantBuild: []Head{{"release/2", "g"}},
			wantSt: []v1alpha1.TriggerBranchStatus{{Name: "release/2", Commit: "f"}}},
		{name: "a deleted branch is no longer tracked", prev: []v1alpha1.TriggerBranchStatus{built, {Name: "gone", Commit: "z"}},
			heads: []Head{{"main", "a"}}, onNew: v1alpha1.NewBranchBuild, wantSt: []v1alpha1.TriggerBranchStatus{built}},
		{name: "a branch whose create failed is built again", prev: []v1alpha1.TriggerBranchStatus{{Name: "main"}},
			heads: []Head{{"main", "a"}}, onNew: v1alpha1.NewBranchSkip, wantBuild: []Head{{"main", "a"}},
			wantSt: []v1alpha1.TriggerBranchStatus{{Name: "main"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := PlanPoll(c.prev, c.heads, c.onNew)
			if diff := cmp.Diff(c.wantBuild, got.Build); diff != "" {
				t.Errorf("build (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(c.wantSt, got.Branches); diff != "" {
				t.Errorf("branches (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRecordRunAndPhases(t *testing.T) {
	st := &v1alpha1.PipelineTriggerStatus{Branches: []v1alpha1.TriggerBranchStatus{{Name: "main", Commit: "old"}, {Name: "dev", Commit: "d"}}}
	RecordRun(st, Head{"main", "0123456789abcdef"}, "app-main-0123456")
	want := &v1alpha1.PipelineTriggerStatus{
		LastRun: "app-main-0123456", LastCommit: "0123456", LastRunPhase: v1alpha1.PhasePending,
		Branches: []v1alpha1.TriggerBranchStatus{
			{Name: "main", Commit: "0123456789abcdef", LastRun: "app-main-0123456", LastRunCommit: "0123456789abcdef", LastRunPhase: v1alpha1.PhasePending},
			{Name: "dev", Commit: "d"},
		},
	}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Fatalf("RecordRun (-want +got):\n%s", diff)
	}
	if RecordPhases(st, map[string]v1alpha1.PipelineRunPhase{"app-main-0123456": v1alpha1.PhaseRunning}) {
		t.Error("a phase that is not final was written: the trigger is written only when runs end")
	}
	if !RecordPhases(st, map[string]v1alpha1.PipelineRunPhase{"app-main-0123456": v1alpha1.PhaseFailed}) {
		t.Error("a run that ended did not change the status")
	}
	if st.Branches[0].LastRunPhase != v1alpha1.PhaseFailed || st.LastRunPhase != v1alpha1.PhaseFailed {
		t.Errorf("phases not recorded: %+v", st)
	}
	if RecordPhases(st, map[string]v1alpha1.PipelineRunPhase{"app-main-0123456": v1alpha1.PhaseFailed}) {
		t.Error("the same end was recorded twice")
	}
}

func TestAlreadyBuilt(t *testing.T) {
	specs := []v1alpha1.TriggerSchedule{{Name: "nightly", Branch: "main"}}
	st := &v1alpha1.PipelineTriggerStatus{
		Branches:  []v1alpha1.TriggerBranchStatus{{Name: "main", Commit: "b", LastRun: "r1", LastRunCommit: "a"}, {Name: "dev", Commit: "x"}},
		Schedules: []v1alpha1.TriggerScheduleStatus{{Name: "nightly", LastRun: "r2", LastRunCommit: "c"}},
	}
	for _, c := range []struct {
		branch, commit string
		want           bool
	}{
		{"main", "a", true},  // a push run built it
		{"main", "c", true},  // the schedule built it
		{"main", "b", false}, // seen, but no run for it
		{"dev", "x", false},  // skipped as a new branch: seen, never built
		{"other", "a", false},
	} {
		if got := AlreadyBuilt(st, specs, c.branch, c.commit); got != c.want {
			t.Errorf("AlreadyBuilt(%s, %s) = %v, want %v", c.branch, c.commit, got, c.want)
		}
	}
}

func TestNextPoll(t *testing.T) {
	last := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	spread := map[time.Duration]bool{}
	for _, uid := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		next := NextPoll(last, time.Minute, uid)
		d := next.Sub(last)
		if d < time.Minute || d >= time.Minute+6*time.Second {
			t.Errorf("uid %s: next poll after %v, want within [1m, 1m6s)", uid, d)
		}
		if again := NextPoll(last, time.Minute, uid); !again.Equal(next) {
			t.Errorf("uid %s: not deterministic: %v then %v", uid, next, again)
		}
		spread[d] = true
	}
	if len(spread) < 4 {
		t.Errorf("8 triggers polled at only %d distinct times: the jitter does not spread them", len(spread))
	}
}

func TestCatchUp(t *testing.T) {
	leading := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name     string
		next     time.Time
		interval time.Duration
		lo, hi   time.Time // the result is in [lo, hi)
	}{
		{"due after the takeover: unchanged", leading.Add(time.Minute), time.Minute, leading.Add(time.Minute), leading.Add(time.Minute + 1)},
		{"due at the takeover: unchanged", leading, time.Minute, leading, leading.Add(1)},
		{"fell due during the gap: within the window", leading.Add(-5 * time.Second), time.Minute, leading, leading.Add(CatchUpWindow)},
		{"long overdue: within the window", leading.Add(-time.Hour), time.Hour, leading, leading.Add(CatchUpWindow)},
		{"a short interval bounds the window", leading.Add(-time.Second), 10 * time.Second, leading, leading.Add(10 * time.Second)},
	} {
		got := CatchUp(c.next, leading, c.interval, "uid-1")
		if got.Before(c.lo) || !got.Before(c.hi) {
			t.Errorf("%s: %v after the takeover, want in [%v, %v)", c.name, got.Sub(leading), c.lo.Sub(leading), c.hi.Sub(leading))
		}
	}
	// 100 triggers that all fell due during the gap: no second of the window gets more
	// than a few of them (evenly, 100 over 30 s is about 3.3 a second).
	perSecond := map[int64]int{}
	for i := range 100 {
		got := CatchUp(leading.Add(-time.Second), leading, time.Minute, fmt.Sprintf("uid-%d", i))
		if again := CatchUp(leading.Add(-time.Second), leading, time.Minute, fmt.Sprintf("uid-%d", i)); !again.Equal(got) {
			t.Fatalf("not deterministic: %v then %v", got, again)
		}
		perSecond[int64(got.Sub(leading)/time.Second)]++
	}
	most := 0
	for _, n := range perSecond {
		most = max(most, n)
	}
	if len(perSecond) < 20 || most > 10 {
		t.Errorf("100 overdue polls fell in %d distinct seconds, at most %d in one: not spread", len(perSecond), most)
	}
}
