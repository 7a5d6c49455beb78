package main

import (
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

func TestTimingLines(t *testing.T) {
	base := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	at := func(s int) *metav1.Time { t := metav1.NewTime(base.Add(time.Duration(s) * time.Second)); return &t }
	run := &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: *at(0)}, Status: v1alpha1.PipelineRunStatus{
		StartTime: at(3), CompletionTime: at(80),
		Timing: &v1alpha1.RunTiming{CloneStartTime: at(5), CloneCompletionTime: at(12), CriticalPath: []string{"lint", "test"}},
		Steps: []v1alpha1.StepStatus{
			{Name: "lint", Attempts: 1, StartTime: at(12), CompletionTime: at(20), Timing: &v1alpha1.StepTiming{ReadyTime: at(12), JobCreationTime: at(12),
				ScheduledTime: at(13), InitializedTime: at(14), ContainerStartTime: at(15)}},
			{Name: "test", Attempts: 2, Flaky: true, StartTime: at(21), CompletionTime: at(80), Timing: &v1alpha1.StepTiming{ReadyTime: at(20), JobCreationTime: at(21),
				PodCreationTime: at(50), ScheduledTime: at(51), ContainerStartTime: at(60)}},
			{Name: "skipped", Phase: v1alpha1.StepSkipped},
		},
	}}
	want := []string{
		"Where the time went:",
		"  queued      3s",
		"  admission   2s (commit, definition, workspace)",
		"  clone       7s",
		"  lint     waiting 0s · handoff 0s · scheduling 1s · preparing 1s · pulling 1s · running 5s",
		"  test     waiting 8s · handoff 1s · earlier attempts 29s · scheduling 1s · preparing, pulling 9s · running 20s",
		"  critical path: lint → test (the run took 1m17s)",
		"Flaky: test (succeeded on attempt 2)",
	}
	if got := timingLines(run); !reflect.DeepEqual(got, want) {
		t.Errorf("timingLines =\n%q\nwant\n%q", got, want)
	}
	if got := timingLines(&v1alpha1.PipelineRun{}); got != nil {
		t.Errorf("a run that did not start: %q", got)
	}
}
