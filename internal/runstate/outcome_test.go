package runstate

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// TestOutcome: a run succeeds when every step Succeeded, was Skipped, or failed with
// allowFailure, and no finally step failed.
func TestOutcome(t *testing.T) {
	withFinally := with(dag(nil, nil, nil), 2, finally(""))
	cases := []struct {
		name   string
		g      Graph
		states []string
		stop   string // StopGraph with this reason first
		phase  v1alpha1.PipelineRunPhase
		reason string
		msg    string
	}{
		{"every step succeeded", chain, []string{"S", "S", "S"}, "", v1alpha1.PhaseSucceeded, v1alpha1.ReasonSucceeded, "all 3 steps succeeded at abc1234"},
		{"an allowed failure", with(chain, 1, allowFailure), []string{"S", "FA", "S"}, "", v1alpha1.PhaseSucceeded, v1alpha1.ReasonSucceeded,
			"succeeded at abc1234: 2 of 3 steps succeeded, 1 failed with allowFailure"},
		{"a step skipped by its when", chain, []string{"S", "KW", "S"}, "", v1alpha1.PhaseSucceeded, v1alpha1.ReasonSucceeded,
			"succeeded at abc1234: 2 of 3 steps succeeded, 1 skipped"},
		{"a resume that reused two steps", chain, []string{"KR", "KR", "S"}, "", v1alpha1.PhaseSucceeded, v1alpha1.ReasonSucceeded,
			"succeeded at abc1234: 1 of 3 steps succeeded, 2 reused from the run it resumed"},
		{"a failure fails the run after its finally steps", withFinally, []string{"S", "F", "S"}, "", v1alpha1.PhaseFailed, v1alpha1.ReasonStepFailed, `step "b" failed`},
		{"the first failure by index names the outcome", dag(nil, nil, nil), []string{"S", "FI", "F"}, "", v1alpha1.PhaseFailed, v1alpha1.ReasonImagePullFailed, `step "b" failed`},
		{"a failed finally step fails the run", withFinally, []string{"S", "S", "F"}, "", v1alpha1.PhaseFailed, v1alpha1.ReasonStepFailed, `finally step "c" failed`},
		{"a finally step may be allowed to fail", with(withFinally, 2, allowFailure), []string{"S", "S", "FA"}, "", v1alpha1.PhaseSucceeded, v1alpha1.ReasonSucceeded,
			"succeeded at abc1234: 2 of 3 steps succeeded, 1 failed with allowFailure"},
		{"failFast ends with the failure, not the stop", dag(nil, nil, nil), []string{"F", "CF", "KF"}, "", v1alpha1.PhaseFailed, v1alpha1.ReasonStepFailed, `step "a" failed`},
		{"a timeout ends TimedOut once the finally steps ran", withFinally, []string{"S", "R", "P"}, v1alpha1.ReasonTimedOut, v1alpha1.PhaseFailed, v1alpha1.ReasonTimedOut, "stop"},
		{"a cancel ends Cancelled once the finally steps ran", withFinally, []string{"S", "R", "P"}, v1alpha1.ReasonCancelled, v1alpha1.PhaseCancelled, v1alpha1.ReasonCancelled, "stop"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run := graphRun(tc.states...)
			if tc.stop != "" {
				if !StopGraph(run, tc.g, tc.stop, "stop", nil, t2) {
					t.Fatal("StopGraph did not stop the graph")
				}
				Summarize(run, tc.g, t2)
				if run.Status.Phase.IsFinished() {
					t.Fatal("the run ended before its finally step ran")
				}
				ready := Schedule(run, tc.g, nil, t2)
				if diff := cmp.Diff([]int{2}, ready); diff != "" {
					t.Fatalf("finally after the stop (-want +got):\n%s", diff)
				}
				run.Status.Steps[2].Phase = v1alpha1.StepSucceeded
			}
			Schedule(run, tc.g, nil, t2)
			Summarize(run, tc.g, t2)
			c := apimeta.FindStatusCondition(run.Status.Conditions, v1alpha1.ConditionSucceeded)
			got := []string{string(run.Status.Phase), c.Reason, c.Message}
			if diff := cmp.Diff([]string{string(tc.phase), tc.reason, tc.msg}, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSummarizeWaitsForEveryStep(t *testing.T) {
	for _, states := range [][]string{{"S", "F", "R"}, {"S", "S", "P"}, {"F", "KU", "R"}} {
		run := graphRun(states...)
		g := with(dag(nil, deps(0), nil), 2, finally(""))
		Summarize(run, g, t2)
		if run.Status.Phase != v1alpha1.PhaseRunning {
			t.Errorf("%v: phase %s, want Running until every step ended", states, run.Status.Phase)
		}
	}
}

func TestStopGraph(t *testing.T) {
	g := with(dag(nil, nil, deps(1), nil), 3, finally(""))
	run := graphRun("S", "R", "P", "P")
	if !StopGraph(run, g, v1alpha1.ReasonCancelled, "cancelled through spec.cancel", map[int]string{1: "b's tail"}, t2) {
		t.Fatal("StopGraph returned false")
	}
	if diff := cmp.Diff([]string{"S", "C", "KC", "P"}, statesOf(run)); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
	if m := run.Status.Steps[1].Message; m != "b's tail" {
		t.Errorf("the stopped step lost its tail: %q", m)
	}
	c := apimeta.FindStatusCondition(run.Status.Conditions, v1alpha1.ConditionSucceeded)
	if c.Status != metav1.ConditionUnknown || c.Reason != v1alpha1.ReasonCancelled || c.Message != "cancelled through spec.cancel"+finallyNote {
		t.Errorf("condition while the finally steps run: %+v", c)
	}
	// A second stop (a timeout after the cancel) changes nothing; the first reason wins.
	if StopGraph(run, g, v1alpha1.ReasonTimedOut, "late", nil, t2) {
		t.Error("StopGraph stopped a stopped graph again")
	}
	// The Summarize of a stopped graph keeps the condition's message.
	run.Status.Steps[3].Phase = v1alpha1.StepRunning
	Summarize(run, g, t2)
	if c := apimeta.FindStatusCondition(run.Status.Conditions, v1alpha1.ConditionSucceeded); c.Message != "cancelled through spec.cancel"+finallyNote {
		t.Errorf("Summarize rewrote the stop's message: %q", c.Message)
	}
	if run.Status.CurrentStep != "d" {
		t.Errorf("currentStep %q", run.Status.CurrentStep)
	}
}
