package runstate

import (
	"reflect"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

var tt0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

// at is tt0 plus s seconds.
func at(s int) *metav1.Time {
	t := metav1.NewTime(tt0.Add(time.Duration(s) * time.Second))
	return &t
}

func ended(name string, start, end int, deps ...string) v1alpha1.StepStatus {
	return v1alpha1.StepStatus{Name: name, Phase: v1alpha1.StepSucceeded, StartTime: at(start), CompletionTime: at(end), DependsOn: deps}
}

// TestPodTimesOf: the times come from the pod's creation, its conditions turning true
// and its step container's start, running or ended.
func TestPodTimesOf(t *testing.T) {
	cond := func(c corev1.PodConditionType, s corev1.ConditionStatus, sec int) corev1.PodCondition {
		return corev1.PodCondition{Type: c, Status: s, LastTransitionTime: *at(sec)}
	}
	for _, c := range []struct {
		name string
		pod  *corev1.Pod
		want PodTimes
	}{
		{"none", nil, PodTimes{}},
		{"pending, refused", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: *at(1)},
			Status: corev1.PodStatus{Conditions: []corev1.PodCondition{cond(corev1.PodScheduled, corev1.ConditionFalse, 2)}}},
			PodTimes{Created: at(1).Time}},
		{"ended", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: *at(1)},
			Status: corev1.PodStatus{Conditions: []corev1.PodCondition{cond(corev1.PodScheduled, corev1.ConditionTrue, 2), cond(corev1.PodInitialized, corev1.ConditionTrue, 5)},
				ContainerStatuses: []corev1.ContainerStatus{{Name: "step", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{StartedAt: *at(9)}}}}}},
			PodTimes{Created: at(1).Time, Scheduled: at(2).Time, Initialized: at(5).Time, ContainerStarted: at(9).Time}},
		{"running", &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "step", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: *at(7)}}}}}},
			PodTimes{ContainerStarted: at(7).Time}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := PodTimesOf(c.pod); got != c.want {
				t.Errorf("PodTimesOf = %+v, want %+v", got, c.want)
			}
		})
	}
}

// TestReadyTime: a step is ready at the latest end of the clone and its dependencies; a
// finally step when the whole graph ended; not while one of them runs.
func TestReadyTime(t *testing.T) {
	steps := []v1alpha1.StepStatus{
		ended("a", 10, 20), ended("b", 10, 50), ended("c", 20, 30, "a"),
		{Name: "d", DependsOn: []string{"b", "c"}}, {Name: "e", DependsOn: []string{"x"}}, {Name: "late", Phase: v1alpha1.StepRunning, StartTime: at(10)},
		{Name: "f", Finally: true}, {Name: "g", DependsOn: []string{"late"}},
	}
	st := &v1alpha1.PipelineRunStatus{Steps: steps, Timing: &v1alpha1.RunTiming{CloneCompletionTime: at(10)}}
	for _, c := range []struct {
		i    int
		want *metav1.Time
	}{
		{0, at(10)}, {2, at(20)}, {3, at(50)}, {4, at(10)}, {6, nil}, {7, nil},
	} {
		if got := ReadyTime(st, c.i); !reflect.DeepEqual(got, c.want) {
			t.Errorf("ReadyTime(%s) = %v, want %v", steps[c.i].Name, got, c.want)
		}
	}
	graph := &v1alpha1.PipelineRunStatus{Steps: []v1alpha1.StepStatus{ended("a", 10, 20), ended("late", 10, 70), steps[6]}, Timing: st.Timing}
	if got := ReadyTime(graph, 2); !reflect.DeepEqual(got, at(70)) {
		t.Errorf("finally ready at %v, want the graph's last end", got)
	}
	// A finally step of a failed run: the skipped steps (no end time) do not count.
	failed := &v1alpha1.PipelineRunStatus{Timing: st.Timing, Steps: []v1alpha1.StepStatus{ended("a", 10, 30),
		{Name: "b", DependsOn: []string{"a"}, Phase: v1alpha1.StepSkipped}, steps[6]}}
	if got := ReadyTime(failed, 2); !reflect.DeepEqual(got, at(30)) {
		t.Errorf("finally after a skipped step: ready at %v, want a's end", got)
	}
	if got := ReadyTime(&v1alpha1.PipelineRunStatus{Steps: steps}, 0); got != nil {
		t.Errorf("without the clone's end: %v", got)
	}
}

// TestCriticalPath: from the step that ended last, back through the dependency that
// ended last of each, on parallel branches and through a finally step.
func TestCriticalPath(t *testing.T) {
	for _, c := range []struct {
		name  string
		steps []v1alpha1.StepStatus
		want  []string
	}{
		{"none ran", []v1alpha1.StepStatus{{Name: "a"}}, nil},
		{"a chain", []v1alpha1.StepStatus{ended("a", 0, 10), ended("b", 10, 20, "a"), ended("c", 20, 30, "b")}, []string{"a", "b", "c"}},
		{"the slow branch of a diamond", []v1alpha1.StepStatus{ended("a", 0, 10), ended("fast", 10, 15, "a"), ended("slow", 10, 40, "a"),
			ended("join", 40, 50, "fast", "slow")}, []string{"a", "slow", "join"}},
		{"a finally step after the graph's last", []v1alpha1.StepStatus{ended("a", 0, 10), ended("b", 0, 25),
			{Name: "report", Finally: true, Phase: v1alpha1.StepSucceeded, StartTime: at(25), CompletionTime: at(27)}}, []string{"b", "report"}},
		{"a dependent that ended in the same second as its dependency", []v1alpha1.StepStatus{ended("a", 0, 10), ended("b", 10, 10, "a")},
			[]string{"a", "b"}},
		{"a skipped step is not on it", []v1alpha1.StepStatus{ended("a", 0, 10), {Name: "b", DependsOn: []string{"a"}, Phase: v1alpha1.StepSkipped}},
			[]string{"a"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := CriticalPath(c.steps); !reflect.DeepEqual(got, c.want) {
				t.Errorf("CriticalPath = %q, want %q", got, c.want)
			}
		})
	}
}

// TestStepSpans: a step's time splits at each observed phase start; an unobserved one
// joins the phase before it; a retried step shows its earlier attempts.
func TestStepSpans(t *testing.T) {
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: *at(12)}}
	full := StepTimingOf(at(10), job, PodTimes{Created: at(12).Time, Scheduled: at(13).Time, Initialized: at(20).Time, ContainerStarted: at(25).Time})
	s := v1alpha1.StepStatus{Attempts: 1, CompletionTime: at(60), Timing: full}
	span := func(p string, a, b int) Span { return Span{Phase: p, Start: at(a).Time, End: at(b).Time} }
	for _, c := range []struct {
		name string
		step v1alpha1.StepStatus
		want []Span
	}{
		{"every phase", s, []Span{span(PhaseWaiting, 5, 10), span(PhaseHandoff, 10, 12), span(PhaseScheduling, 12, 13),
			span(PhasePreparing, 13, 20), span(PhasePulling, 20, 25), span(PhaseRunning, 25, 60)}},
		{"not initialized seen", func() v1alpha1.StepStatus {
			c := s
			c.Timing = full.DeepCopy()
			c.Timing.InitializedTime = nil
			return c
		}(), []Span{span(PhaseWaiting, 5, 10), span(PhaseHandoff, 10, 12), span(PhaseScheduling, 12, 13),
			span(PhasePreparing+", "+PhasePulling, 13, 25), span(PhaseRunning, 25, 60)}},
		{"retried", func() v1alpha1.StepStatus {
			c := s
			c.Attempts, c.Timing = 2, full.DeepCopy()
			c.Timing.PodCreationTime = at(40)
			c.Timing.ScheduledTime, c.Timing.InitializedTime, c.Timing.ContainerStartTime = at(41), at(42), at(43)
			return c
		}(), []Span{span(PhaseWaiting, 5, 10), span(PhaseHandoff, 10, 12), span(PhaseRetries, 12, 40), span(PhaseScheduling, 40, 41),
			span(PhasePreparing, 41, 42), span(PhasePulling, 42, 43), span(PhaseRunning, 43, 60)}},
		{"no Job (skipped)", v1alpha1.StepStatus{CompletionTime: at(3)}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := StepSpans(c.step, at(5)); !reflect.DeepEqual(got, c.want) {
				t.Errorf("StepSpans =\n%+v\nwant\n%+v", got, c.want)
			}
		})
	}
}

// TestFlaky: a step that succeeded on a later attempt is flaky; on its first, or
// failing on its last, it is not.
func TestFlaky(t *testing.T) {
	for _, c := range []struct {
		attempts int32
		reason   string
		want     bool
	}{{1, "", false}, {2, "", true}, {3, v1alpha1.ReasonStepFailed, false}} {
		s := v1alpha1.StepStatus{Phase: v1alpha1.StepRunning}
		EndStep(&s, StepEnd{Attempts: c.attempts, Reason: c.reason}, *at(1))
		if s.Flaky != c.want {
			t.Errorf("attempts %d, reason %q: flaky %v", c.attempts, c.reason, s.Flaky)
		}
	}
}
