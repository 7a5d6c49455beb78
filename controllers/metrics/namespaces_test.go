package metrics

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// TestForgetNamespace: the series of a deleted namespace go, the others stay.
func TestForgetNamespace(t *testing.T) {
	start, end := metav1.NewTime(time.Now().Add(-time.Minute)), metav1.Now()
	for _, ns := range []string{"gone-ns", "kept-ns"} {
		run := &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, CreationTimestamp: start},
			Status: v1alpha1.PipelineRunStatus{Phase: v1alpha1.PhaseSucceeded, StartTime: &start, CompletionTime: &end}}
		m := RunMetrics{}
		m.RunStarted(run)
		m.RunEnded(run, v1alpha1.ReasonSucceeded)
		m.StepStarted(ns, start.Time, end.Time)
		m.StepEnded(ns, v1alpha1.StepStatus{Phase: v1alpha1.StepSucceeded, StartTime: &start, CompletionTime: &end, Flaky: true})
		m.StepPodStarted(ns, start.Time, end.Time)
		ObservePoll(ns, nil)
		ObserveTriggered(ns, "push")
	}
	before := seriesOf(t, "gone-ns")
	if before < 9 {
		t.Fatalf("%d series of the namespace before", before)
	}
	ForgetNamespace("gone-ns")
	if n := seriesOf(t, "gone-ns"); n != 0 {
		t.Errorf("%d series of the deleted namespace left", n)
	}
	if n := seriesOf(t, "kept-ns"); n != before {
		t.Errorf("%d series of another namespace, want %d", n, before)
	}
}

// seriesOf counts the series on the operator's registry labelled with namespace ns.
func seriesOf(t *testing.T, ns string) int {
	t.Helper()
	families, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "namespace" && l.GetValue() == ns {
					n++
				}
			}
		}
	}
	return n
}
