package webview

import (
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

func TestTimelineOf(t *testing.T) {
	base := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	at := func(s int) *metav1.Time { t := metav1.NewTime(base.Add(time.Duration(s) * time.Second)); return &t }
	run := &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: *at(0)}, Status: v1alpha1.PipelineRunStatus{
		StartTime: at(10), CompletionTime: at(100),
		Timing: &v1alpha1.RunTiming{CloneStartTime: at(10), CloneCompletionTime: at(20), CriticalPath: []string{"b"}},
		Steps: []v1alpha1.StepStatus{
			{Name: "a", Attempts: 1, CompletionTime: at(40), Timing: &v1alpha1.StepTiming{ReadyTime: at(20), JobCreationTime: at(20), ContainerStartTime: at(30)}},
			{Name: "b", Attempts: 1, Flaky: true, CompletionTime: at(100), Timing: &v1alpha1.StepTiming{ReadyTime: at(20), JobCreationTime: at(20), ScheduledTime: at(25), ContainerStartTime: at(50)}},
			{Name: "skipped", Phase: v1alpha1.StepSkipped, CompletionTime: at(40)},
		},
	}}
	got := timelineOf(run, base.Add(time.Hour))
	want := timeline{Total: "1m40s", Path: "b", Rows: []timelineRow{
		{Name: "(run)", Segments: []segment{{"queued", "queued 10s", 0, 10}, {"admission", "admission 0s", 10, 0}, {"clone", "clone 10s", 10, 10}}},
		{Name: "a", Segments: []segment{{"waiting", "waiting 0s", 20, 0}, {"handoff", "handoff 0s", 20, 0},
			{"scheduling", "scheduling, preparing, pulling 10s", 20, 10}, {"running", "running 10s", 30, 10}}},
		{Name: "b", Critical: true, Flaky: true, Segments: []segment{{"waiting", "waiting 0s", 20, 0}, {"handoff", "handoff 0s", 20, 0},
			{"scheduling", "scheduling 5s", 20, 5}, {"preparing", "preparing, pulling 25s", 25, 25}, {"running", "running 50s", 50, 50}}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("timelineOf =\n%+v\nwant\n%+v", got, want)
	}
	// A running run's axis ends now; a step under way is drawn to it.
	run.Status.CompletionTime, run.Status.Timing.CriticalPath = nil, nil
	run.Status.Steps[1] = v1alpha1.StepStatus{Name: "b", Phase: v1alpha1.StepRunning, StartTime: at(20)}
	got = timelineOf(run, base.Add(200*time.Second))
	if last := got.Rows[len(got.Rows)-1]; last.Name != "b" || !reflect.DeepEqual(last.Segments, []segment{{"running", "running 3m0s", 10, 90}}) || got.Total != "3m20s" {
		t.Errorf("running: %+v, total %s", last, got.Total)
	}
	if got := timelineOf(&v1alpha1.PipelineRun{}, base); got.Rows != nil {
		t.Errorf("not started: %+v", got)
	}
}
