package runstate

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

func TestBeyondHistory(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	run := func(name string, phase v1alpha1.PipelineRunPhase, created, ended int) *v1alpha1.PipelineRun {
		r := &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(created) * time.Minute))}}
		r.Status.Phase = phase
		if ended > 0 {
			end := metav1.NewTime(t0.Add(time.Duration(ended) * time.Minute))
			r.Status.CompletionTime = &end
		}
		return r
	}
	runs := []*v1alpha1.PipelineRun{
		run("ok-old", v1alpha1.PhaseSucceeded, 1, 5),
		run("ok-new", v1alpha1.PhaseSucceeded, 2, 9),
		run("ok-mid", v1alpha1.PhaseSucceeded, 3, 7),
		run("failed", v1alpha1.PhaseFailed, 4, 6),
		run("cancelled", v1alpha1.PhaseCancelled, 5, 8),
		run("running", v1alpha1.PhaseRunning, 0, 0),
		run("tie-b", v1alpha1.PhaseSucceeded, 6, 10),
		run("tie-a", v1alpha1.PhaseSucceeded, 6, 10),
	}
	names := func(rs []*v1alpha1.PipelineRun) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Name)
		}
		return out
	}
	for _, c := range []struct {
		name   string
		limits HistoryLimits
		want   []string
	}{
		{"keep 2 succeeded and 1 failed: the oldest go, by completion; a tie ends by name", HistoryLimits{2, 1}, []string{"ok-new", "ok-mid", "ok-old", "failed"}},
		{"cancelled counts as failed", HistoryLimits{-1, 0}, []string{"cancelled", "failed"}},
		{"negative keeps all, and an active run is never chosen", HistoryLimits{-1, -1}, nil},
		{"zero deletes every finished run", HistoryLimits{0, 5}, []string{"tie-b", "tie-a", "ok-new", "ok-mid", "ok-old"}},
	} {
		if diff := cmp.Diff(c.want, names(BeyondHistory(append([]*v1alpha1.PipelineRun(nil), runs...), c.limits))); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, diff)
		}
	}
}

func TestOldest(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	run := func(name string, ended int) *v1alpha1.PipelineRun {
		end := metav1.NewTime(t0.Add(time.Duration(ended) * time.Minute))
		return &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: v1alpha1.PipelineRunStatus{Phase: v1alpha1.PhaseSucceeded, CompletionTime: &end}}
	}
	runs := []*v1alpha1.PipelineRun{run("c", 3), run("a", 1), run("d", 4), run("b", 2)}
	for _, c := range []struct {
		n    int
		want []string
	}{{0, nil}, {-1, nil}, {2, []string{"a", "b"}}, {9, []string{"a", "b", "c", "d"}}} {
		var got []string
		for _, r := range Oldest(append([]*v1alpha1.PipelineRun(nil), runs...), c.n) {
			got = append(got, r.Name)
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("Oldest(%d) (-want +got):\n%s", c.n, diff)
		}
	}
}

func TestBeyondNamespaceLimit(t *testing.T) {
	cases := []struct{ held, limit, want int }{
		{held: 0, limit: 1000, want: 0},
		{held: 1000, limit: 1000, want: 0},
		{held: 1001, limit: 1000, want: 0}, // a branch limit is deleting one
		{held: 1100, limit: 1000, want: 0},
		{held: 1101, limit: 1000, want: 101},
		{held: 3, limit: 2, want: 1}, // below 10, no slack
		{held: 2, limit: 2, want: 0},
		{held: 1, limit: 0, want: 1},
		{held: 5000, limit: -1, want: 0},
	}
	for _, c := range cases {
		if got := BeyondNamespaceLimit(c.held, c.limit); got != c.want {
			t.Errorf("BeyondNamespaceLimit(%d, %d) = %d, want %d", c.held, c.limit, got, c.want)
		}
	}
}
