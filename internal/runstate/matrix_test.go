package runstate

import (
	"reflect"
	"testing"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/pipeline"
)

// TestFailFastAcrossCombinations: a matrix step's combinations are steps of the graph
// like any other, so under failFast the first combination that fails stops the others
// still running, and the step after the matrix, which waits for all of them, is skipped.
func TestFailFastAcrossCombinations(t *testing.T) {
	def, err := pipeline.Parse([]byte("name: m\nfailFast: true\nsteps:\n- name: test\n  matrix: {go: [\"1\", \"2\", \"3\"]}\n  commands: [x]\n" +
		"- name: report\n  commands: [y]\n"))
	if err != nil {
		t.Fatal(err)
	}
	g := GraphOf(&def.Pipeline, "main", 0)
	run := runningRun()
	for i, s := range def.Pipeline.All() {
		run.Status.Steps = append(run.Status.Steps, v1alpha1.StepStatus{Name: s.Name, Index: int32(i), Phase: v1alpha1.StepRunning, DependsOn: s.DependsOn})
	}
	run.Status.Steps[3].Phase = v1alpha1.StepPending
	run.Status.Steps[1].Phase, run.Status.Steps[1].Reason = v1alpha1.StepFailed, v1alpha1.ReasonStepFailed
	if got := FailFastStops(run, g); !reflect.DeepEqual(got, []int{0, 2}) {
		t.Fatalf("FailFastStops = %v, want the other two combinations", got)
	}
	Schedule(run, g, nil, t2)
	var phases []v1alpha1.StepPhase
	for _, s := range run.Status.Steps {
		phases = append(phases, s.Phase)
	}
	if want := []v1alpha1.StepPhase{v1alpha1.StepCancelled, v1alpha1.StepFailed, v1alpha1.StepCancelled, v1alpha1.StepSkipped}; !reflect.DeepEqual(phases, want) {
		t.Errorf("phases %v, want %v", phases, want)
	}
}
