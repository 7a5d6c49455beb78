package runstate

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

func steps(phases ...v1alpha1.StepPhase) []v1alpha1.StepStatus {
	out := make([]v1alpha1.StepStatus, len(phases))
	for i, p := range phases {
		out[i] = v1alpha1.StepStatus{Name: string(rune('a' + i)), Index: int32(i), Phase: p}
		if p != v1alpha1.StepPending {
			out[i].StartTime = t0.DeepCopy()
		}
	}
	return out
}

// runningRun is a run of generation 3 whose steps have the given phases.
func runningRun(phases ...v1alpha1.StepPhase) *v1alpha1.PipelineRun {
	run := &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "r", Generation: 3}}
	run.Status = v1alpha1.PipelineRunStatus{Phase: v1alpha1.PhaseRunning, ShortCommit: "abc1234", StartTime: t0.DeepCopy(), Steps: steps(phases...),
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionSucceeded, Status: metav1.ConditionUnknown, Reason: v1alpha1.ReasonRunning, ObservedGeneration: 2}}}
	return run
}

// shape is what every ended run must agree on.
type shape struct {
	Phase          v1alpha1.PipelineRunPhase
	CondStatus     metav1.ConditionStatus
	Reason, Msg    string
	Generation     int64
	StepPhases     []v1alpha1.StepPhase
	StepReasons    []string
	Progress       string
	Current        string
	Completed      bool
	TransitionTime bool
}

func shapeOf(run *v1alpha1.PipelineRun) shape {
	c := apimeta.FindStatusCondition(run.Status.Conditions, v1alpha1.ConditionSucceeded)
	sh := shape{Phase: run.Status.Phase, CondStatus: c.Status, Reason: c.Reason, Msg: c.Message, Generation: c.ObservedGeneration,
		Progress: run.Status.Progress, Current: run.Status.CurrentStep,
		Completed: run.Status.CompletionTime.Equal(&t2), TransitionTime: c.LastTransitionTime.Equal(&t2)}
	for _, s := range run.Status.Steps {
		sh.StepPhases = append(sh.StepPhases, s.Phase)
		sh.StepReasons = append(sh.StepReasons, s.Reason)
	}
	return sh
}

// TestEveryWayARunEnds drives each ending through the code path that uses it and checks
// that all of them leave the same shape of status.
func TestEveryWayARunEnds(t *testing.T) {
	const (
		S, R, P, F, C, K = v1alpha1.StepSucceeded, v1alpha1.StepRunning, v1alpha1.StepPending, v1alpha1.StepFailed, v1alpha1.StepCancelled, v1alpha1.StepSkipped
	)
	stopped := func(phase v1alpha1.PipelineRunPhase, reason, msg string) func(*v1alpha1.PipelineRun) {
		return func(run *v1alpha1.PipelineRun) {
			End(run, Ending{Phase: phase, Reason: reason, Message: msg, Tails: map[int]string{1: "last lines"}}, t2)
		}
	}
	cases := []struct {
		name   string
		run    *v1alpha1.PipelineRun
		end    func(*v1alpha1.PipelineRun)
		want   shape
		skipMs string
	}{
		{"every step succeeded", runningRun(S, S, S), func(r *v1alpha1.PipelineRun) { Summarize(r, chain, t2) },
			shape{v1alpha1.PhaseSucceeded, metav1.ConditionTrue, v1alpha1.ReasonSucceeded, "all 3 steps succeeded at abc1234", 3,
				[]v1alpha1.StepPhase{S, S, S}, []string{"", "", ""}, "3/3", "", true, true}, ""},
		{"a step failed", func() *v1alpha1.PipelineRun {
			r := runningRun(S, F, P)
			r.Status.Steps[1].Reason, r.Status.Steps[1].ExitCode = v1alpha1.ReasonStepFailed, ptr.To[int32](2)
			return r
		}(), func(r *v1alpha1.PipelineRun) { Schedule(r, chain, nil, t2); Summarize(r, chain, t2) },
			shape{v1alpha1.PhaseFailed, metav1.ConditionFalse, v1alpha1.ReasonStepFailed, `step "b" failed with exit code 2`, 3,
				[]v1alpha1.StepPhase{S, F, K}, []string{"", v1alpha1.ReasonStepFailed, v1alpha1.ReasonUpstreamFailed}, "3/3", "", true, true}, `skipped: step "b" did not succeed`},
		{"the run timed out", runningRun(S, R, P), stopped(v1alpha1.PhaseFailed, v1alpha1.ReasonTimedOut, "the run exceeded its timeout of 1h0m0s"),
			shape{v1alpha1.PhaseFailed, metav1.ConditionFalse, v1alpha1.ReasonTimedOut, "the run exceeded its timeout of 1h0m0s", 3,
				[]v1alpha1.StepPhase{S, F, K}, []string{"", v1alpha1.ReasonTimedOut, ""}, "3/3", "", true, true}, "skipped: TimedOut"},
		{"cancelled", runningRun(S, R, P), stopped(v1alpha1.PhaseCancelled, v1alpha1.ReasonCancelled, "cancelled through spec.cancel"),
			shape{v1alpha1.PhaseCancelled, metav1.ConditionFalse, v1alpha1.ReasonCancelled, "cancelled through spec.cancel", 3,
				[]v1alpha1.StepPhase{S, C, K}, []string{"", v1alpha1.ReasonCancelled, ""}, "3/3", "", true, true}, "skipped: Cancelled"},
		{"replaced", runningRun(S, R, P), stopped(v1alpha1.PhaseCancelled, v1alpha1.ReasonCancelled, `replaced by the newer run "n"`),
			shape{v1alpha1.PhaseCancelled, metav1.ConditionFalse, v1alpha1.ReasonCancelled, `replaced by the newer run "n"`, 3,
				[]v1alpha1.StepPhase{S, C, K}, []string{"", v1alpha1.ReasonCancelled, ""}, "3/3", "", true, true}, "skipped: Cancelled"},
		{"a watchdog", runningRun(S, R, P), stopped(v1alpha1.PhaseFailed, v1alpha1.ReasonImagePullFailed, "image x: ErrImagePull"),
			shape{v1alpha1.PhaseFailed, metav1.ConditionFalse, v1alpha1.ReasonImagePullFailed, "image x: ErrImagePull", 3,
				[]v1alpha1.StepPhase{S, F, K}, []string{"", v1alpha1.ReasonImagePullFailed, ""}, "3/3", "", true, true}, "skipped: ImagePullFailed"},
		{"a permanent error mid-run", runningRun(S, R, P), func(r *v1alpha1.PipelineRun) {
			End(r, Ending{Phase: v1alpha1.PhaseFailed, Reason: v1alpha1.ReasonStepJobDeleted, Message: "the Job was deleted"}, t2)
		}, shape{v1alpha1.PhaseFailed, metav1.ConditionFalse, v1alpha1.ReasonStepJobDeleted, "the Job was deleted", 3,
			[]v1alpha1.StepPhase{S, F, K}, []string{"", v1alpha1.ReasonStepJobDeleted, ""}, "3/3", "", true, true}, "skipped: StepJobDeleted"},
		{"Forbid, before the run started", func() *v1alpha1.PipelineRun {
			r := &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
			return r
		}(), func(r *v1alpha1.PipelineRun) {
			End(r, Ending{Phase: v1alpha1.PhaseFailed, Reason: v1alpha1.ReasonConcurrencyForbidden, Message: "run x is active"}, t2)
		}, shape{v1alpha1.PhaseFailed, metav1.ConditionFalse, v1alpha1.ReasonConcurrencyForbidden, "run x is active", 3,
			nil, nil, "0/0", "", true, true}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.end(tc.run)
			if diff := cmp.Diff(tc.want, shapeOf(tc.run)); diff != "" {
				t.Errorf("status shape (-want +got):\n%s", diff)
			}
			for _, s := range tc.run.Status.Steps {
				if s.Phase == v1alpha1.StepSkipped && s.Message != tc.skipMs {
					t.Errorf("skipped step %s: message %q, want %q", s.Name, s.Message, tc.skipMs)
				}
				if (s.Phase == v1alpha1.StepCancelled || s.Reason == v1alpha1.ReasonTimedOut) && s.Message != "last lines" {
					t.Errorf("stopped step %s lost its log tail: %q", s.Name, s.Message)
				}
			}
			if tc.run.Status.QueuePosition != 0 {
				t.Errorf("queuePosition %d", tc.run.Status.QueuePosition)
			}
			// The first outcome wins.
			if End(tc.run, Ending{Phase: v1alpha1.PhaseSucceeded, Reason: "Late"}, t2) {
				t.Error("End ended a finished run again")
			}
			if diff := cmp.Diff(tc.want, shapeOf(tc.run)); diff != "" {
				t.Errorf("status changed by a second End (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSummarizeWhileRunning(t *testing.T) {
	cases := []struct {
		name                   string
		run                    *v1alpha1.PipelineRun
		progress, current, msg string
	}{
		{"first step running", runningRun(v1alpha1.StepRunning, v1alpha1.StepPending), "0/2", "a", `running step 1/2 "a"`},
		{"between steps", runningRun(v1alpha1.StepSucceeded, v1alpha1.StepPending), "1/2", "", ""},
		{"progress counts every ended step", runningRun(v1alpha1.StepSucceeded, v1alpha1.StepSkipped, v1alpha1.StepFailed, v1alpha1.StepRunning), "3/4", "d", `running step 4/4 "d"`},
		{"two steps running", runningRun(v1alpha1.StepRunning, v1alpha1.StepRunning, v1alpha1.StepPending), "0/3", "a,b", "running 2 steps: a,b"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			Summarize(tc.run, dag(make([][]int, len(tc.run.Status.Steps))...), t2)
			c := apimeta.FindStatusCondition(tc.run.Status.Conditions, v1alpha1.ConditionSucceeded)
			got := []string{string(tc.run.Status.Phase), tc.run.Status.Progress, tc.run.Status.CurrentStep, c.Message}
			if diff := cmp.Diff([]string{"Running", tc.progress, tc.current, tc.msg}, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if tc.run.Status.CompletionTime != nil {
				t.Error("an active run got a completionTime")
			}
		})
	}
}

func TestAdmitQueueRunningCarryTheGeneration(t *testing.T) {
	run := &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Generation: 4}}
	check := func(phase v1alpha1.PipelineRunPhase, reason string) {
		t.Helper()
		c := apimeta.FindStatusCondition(run.Status.Conditions, v1alpha1.ConditionSucceeded)
		if run.Status.Phase != phase || c.Reason != reason || c.Status != metav1.ConditionUnknown || c.ObservedGeneration != 4 {
			t.Errorf("phase %s, condition %+v; want %s/%s at generation 4", run.Status.Phase, c, phase, reason)
		}
	}
	run.Status.QueuePosition = 3 // set by an earlier version
	Queue(run, "waiting")
	check(v1alpha1.PhaseQueued, v1alpha1.ReasonQueued)
	if run.Status.QueuePosition != 0 || run.Status.StartTime != nil {
		t.Errorf("queued: position %d (no longer set), startTime %v", run.Status.QueuePosition, run.Status.StartTime)
	}
	Admit(run, t1)
	check(v1alpha1.PhasePending, v1alpha1.ReasonPending)
	if run.Status.QueuePosition != 0 || !run.Status.StartTime.Equal(&t1) {
		t.Errorf("admitted: position %d, startTime %v", run.Status.QueuePosition, run.Status.StartTime)
	}
	MarkRunning(run, "cloning")
	check(v1alpha1.PhaseRunning, v1alpha1.ReasonRunning)
	End(run, Ending{Phase: v1alpha1.PhaseFailed, Reason: v1alpha1.ReasonCloneFailed}, t2)
	MarkRunning(run, "again")
	if run.Status.Phase != v1alpha1.PhaseFailed {
		t.Error("MarkRunning revived a finished run")
	}
}

func TestStepNamesFitCurrentStep(t *testing.T) {
	long := make([]v1alpha1.StepStatus, 10)
	idx := make([]int, 10)
	for i := range long {
		long[i] = v1alpha1.StepStatus{Name: strings.Repeat(string(rune('a'+i)), 60)}
		idx[i] = i
	}
	got := stepNames(long, idx)
	if len(got) > maxCurrentStep {
		t.Fatalf("%d bytes", len(got))
	}
	want := strings.Repeat("a", 60) + "," + strings.Repeat("b", 60) + "," + strings.Repeat("c", 60) + "," + strings.Repeat("d", 60) + ",+6"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := stepNames(long[:2], []int{0, 1}); got != strings.Repeat("a", 60)+","+strings.Repeat("b", 60) {
		t.Errorf("two names: %q", got)
	}
	if got := stepNames(long, nil); got != "" {
		t.Errorf("no names: %q", got)
	}
}

func TestExitCode(t *testing.T) {
	code := func(c int32) *int32 { return &c }
	for _, tc := range []struct {
		name  string
		phase v1alpha1.PipelineRunPhase
		steps []v1alpha1.StepStatus
		want  int
	}{
		{"succeeded", v1alpha1.PhaseSucceeded, nil, 0},
		{"the first step that failed by itself", v1alpha1.PhaseFailed, []v1alpha1.StepStatus{
			{Phase: v1alpha1.StepFailed, Reason: v1alpha1.ReasonAllowedFailure, ExitCode: code(9)},
			{Phase: v1alpha1.StepFailed, Reason: v1alpha1.ReasonStepFailed, ExitCode: code(4)},
			{Phase: v1alpha1.StepFailed, Reason: v1alpha1.ReasonStepFailed, ExitCode: code(5)}}, 4},
		{"no exit code (timed out)", v1alpha1.PhaseFailed, []v1alpha1.StepStatus{{Phase: v1alpha1.StepFailed, Reason: v1alpha1.ReasonStepTimedOut}}, 1},
		{"cancelled", v1alpha1.PhaseCancelled, []v1alpha1.StepStatus{{Phase: v1alpha1.StepCancelled, ExitCode: code(143)}}, 1},
	} {
		run := &v1alpha1.PipelineRun{Status: v1alpha1.PipelineRunStatus{Phase: tc.phase, Steps: tc.steps}}
		if got := ExitCode(run); got != tc.want {
			t.Errorf("%s: ExitCode = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestBranchAndCommit(t *testing.T) {
	run := &v1alpha1.PipelineRun{Spec: v1alpha1.PipelineRunSpec{Branch: "main"}}
	NameBranch(run)
	if run.Status.Branch != "main" {
		t.Errorf("a branch run builds its branch: %q", run.Status.Branch)
	}
	pinned := &v1alpha1.PipelineRun{Spec: v1alpha1.PipelineRunSpec{Branch: "main", Revision: strings.Repeat("a", 40)}}
	NameBranch(pinned)
	if pinned.Status.Branch != "" {
		t.Errorf("a pinned revision's branch waits for its check: %q", pinned.Status.Branch)
	}
	PlaceRevision(pinned, false)
	if pinned.Status.Branch != "" || !pinned.Status.Detached {
		t.Errorf("off the branch: %+v", pinned.Status)
	}
	PlaceRevision(pinned, true)
	if pinned.Status.Branch != "main" || pinned.Status.Detached {
		t.Errorf("on the branch: %+v", pinned.Status)
	}
	PinCommit(pinned, strings.Repeat("b", 40))
	if pinned.Status.Commit != strings.Repeat("b", 40) || pinned.Status.ShortCommit != "bbbbbbb" {
		t.Errorf("PinCommit: %+v", pinned.Status)
	}
}
