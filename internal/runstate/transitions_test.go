package runstate

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// TestTransitionsOfEachPass replays the passes of a run and checks what each reports.
func TestTransitionsOfEachPass(t *testing.T) {
	run := &v1alpha1.PipelineRun{}
	type pass struct {
		name   string
		change func(*v1alpha1.PipelineRun)
		want   []Transition
	}
	passes := []pass{
		{"queued", func(r *v1alpha1.PipelineRun) { Queue(r, "waiting") },
			[]Transition{{Kind: RunQueued, Step: -1, Phase: "Queued", Message: "waiting"}}},
		{"admitted", func(r *v1alpha1.PipelineRun) { Admit(r, t0) }, nil},
		{"pinned and cloning", func(r *v1alpha1.PipelineRun) {
			r.Status.Steps = steps(v1alpha1.StepPending, v1alpha1.StepPending)
			MarkRunning(r, "cloning")
		}, []Transition{{Kind: RunStarted, Step: -1, Phase: "Running"}}},
		{"nothing changed", func(*v1alpha1.PipelineRun) {}, nil},
		{"first step started", func(r *v1alpha1.PipelineRun) { r.Status.Steps[0].Phase = v1alpha1.StepRunning },
			[]Transition{{Kind: StepStarted, Step: 0, Phase: "Running"}}},
		{"handoff", func(r *v1alpha1.PipelineRun) {
			r.Status.Steps[0].Phase = v1alpha1.StepSucceeded
			r.Status.Steps[1].Phase = v1alpha1.StepRunning
		}, []Transition{{Kind: StepEnded, Step: 0, Phase: "Succeeded"}, {Kind: StepStarted, Step: 1, Phase: "Running"}}},
		{"cancelled", func(r *v1alpha1.PipelineRun) {
			End(r, Ending{Phase: v1alpha1.PhaseCancelled, Reason: v1alpha1.ReasonCancelled, Message: "stop"}, t2)
		}, []Transition{
			{Kind: StepEnded, Step: 1, Phase: "Cancelled", Reason: v1alpha1.ReasonCancelled, Message: "stop"},
			{Kind: RunEnded, Step: -1, Phase: "Cancelled", Reason: v1alpha1.ReasonCancelled, Message: "stop"},
		}},
		{"finished runs do not change", func(r *v1alpha1.PipelineRun) { Summarize(r, chain, t2) }, nil},
	}
	for _, p := range passes {
		before := run.Status.DeepCopy()
		p.change(run)
		if diff := cmp.Diff(p.want, Transitions(before, &run.Status)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", p.name, diff)
		}
	}
}

func TestTransitionsOfAFailure(t *testing.T) {
	run := runningRun(v1alpha1.StepSucceeded, v1alpha1.StepRunning, v1alpha1.StepPending)
	before := run.Status.DeepCopy()
	run.Status.Steps[1].Phase, run.Status.Steps[1].Reason = v1alpha1.StepFailed, v1alpha1.ReasonStepFailed
	Schedule(run, chain, nil, t2)
	Summarize(run, chain, t2)
	want := []Transition{
		{Kind: StepEnded, Step: 1, Phase: "Failed", Reason: v1alpha1.ReasonStepFailed},
		{Kind: StepEnded, Step: 2, Phase: "Skipped", Reason: v1alpha1.ReasonUpstreamFailed, Message: `skipped: step "b" did not succeed`},
		{Kind: RunEnded, Step: -1, Phase: "Failed", Reason: v1alpha1.ReasonStepFailed, Message: `step "b" failed`},
	}
	if diff := cmp.Diff(want, Transitions(before, &run.Status)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
