package runstate

import (
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// RecordClone notes the clone's times once its Job completed, the first time it is seen
// so.
func RecordClone(run *v1alpha1.PipelineRun, job *batchv1.Job) {
	if run.Status.Timing == nil {
		run.Status.Timing = &v1alpha1.RunTiming{}
	}
	if t := run.Status.Timing; t.CloneCompletionTime == nil {
		start, end := job.CreationTimestamp, SucceededAt(job)
		t.CloneStartTime, t.CloneCompletionTime = &start, &end
	}
}

// PodTimes are when a step pod reached each of its phases, as last observed; a zero
// time was not observed.
type PodTimes struct {
	Created, Scheduled, Initialized, ContainerStarted time.Time
}

// PodTimesOf reads a pod's times: its creation, its PodScheduled and Initialized
// conditions turning true, and its first container's start (the step's).
func PodTimesOf(p *corev1.Pod) PodTimes {
	if p == nil {
		return PodTimes{}
	}
	pt := PodTimes{Created: p.CreationTimestamp.Time}
	if c := podCondition(p, corev1.PodScheduled); c != nil && c.Status == corev1.ConditionTrue {
		pt.Scheduled = c.LastTransitionTime.Time
	}
	if c := podCondition(p, corev1.PodInitialized); c != nil && c.Status == corev1.ConditionTrue {
		pt.Initialized = c.LastTransitionTime.Time
	}
	if len(p.Status.ContainerStatuses) > 0 {
		cs := p.Status.ContainerStatuses[0].State
		switch {
		case cs.Running != nil:
			pt.ContainerStarted = cs.Running.StartedAt.Time
		case cs.Terminated != nil:
			pt.ContainerStarted = cs.Terminated.StartedAt.Time
		}
	}
	return pt
}

// ReadyTime is when step i of st could start: the latest end among its dependencies
// and the clone's; for a finally step, among every step of the graph. A skipped step
// has no end time and does not count. Nil while one of them has not ended, or the
// clone's end is unknown.
func ReadyTime(st *v1alpha1.PipelineRunStatus, i int) *metav1.Time {
	if st.Timing == nil || st.Timing.CloneCompletionTime == nil {
		return nil
	}
	ready := *st.Timing.CloneCompletionTime
	later := func(s *v1alpha1.StepStatus) bool {
		if s.CompletionTime == nil {
			return IsTerminal(s.Phase)
		}
		if s.CompletionTime.After(ready.Time) {
			ready = *s.CompletionTime
		}
		return true
	}
	step := &st.Steps[i]
	for j := range st.Steps {
		other := &st.Steps[j]
		waits := step.Finally && !other.Finally
		for _, d := range step.DependsOn {
			waits = waits || d == other.Name
		}
		if waits && !later(other) {
			return nil
		}
	}
	return &ready
}

// StepTimingOf completes a step's timing once it ended: ready is the step's ReadyTime,
// job its Job, pt its last pod's times. Times not observed are left out.
func StepTimingOf(ready *metav1.Time, job *batchv1.Job, pt PodTimes) *v1alpha1.StepTiming {
	at := func(t time.Time) *metav1.Time {
		if t.IsZero() {
			return nil
		}
		mt := metav1.NewTime(t)
		return &mt
	}
	t := &v1alpha1.StepTiming{ReadyTime: ready, PodCreationTime: at(pt.Created), ScheduledTime: at(pt.Scheduled),
		InitializedTime: at(pt.Initialized), ContainerStartTime: at(pt.ContainerStarted)}
	if job != nil {
		t.JobCreationTime = at(job.CreationTimestamp.Time)
	}
	return t
}

// CriticalPath names the steps that decided when the run ended, first to last: the
// step that ended last, then, going back, the dependency that ended last of each (for
// a finally step, the step of the graph that ended last). Steps that never started are
// not on it.
func CriticalPath(steps []v1alpha1.StepStatus) []string {
	last := latestEnd(steps, func(s *v1alpha1.StepStatus) bool { return true })
	var path []string
	for seen := map[int]bool{}; last >= 0 && !seen[last]; {
		seen[last] = true
		path = append(path, steps[last].Name)
		cur := steps[last]
		last = latestEnd(steps, func(s *v1alpha1.StepStatus) bool {
			if cur.Finally {
				return !s.Finally
			}
			for _, d := range cur.DependsOn {
				if d == s.Name {
					return true
				}
			}
			return false
		})
	}
	for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
		path[i], path[j] = path[j], path[i]
	}
	return path
}

// latestEnd is the index of the step, among those keep accepts, that ended last; -1
// for none. Times have a second's resolution: of steps that ended in the same second,
// the one that started last (a dependent starts after what it waits for), then the
// later in the file, counts as the later.
func latestEnd(steps []v1alpha1.StepStatus, keep func(*v1alpha1.StepStatus) bool) int {
	best := -1
	for i := range steps {
		s := &steps[i]
		if s.StartTime == nil || s.CompletionTime == nil || !keep(s) {
			continue
		}
		if best < 0 {
			best = i
			continue
		}
		b := &steps[best]
		if s.CompletionTime.After(b.CompletionTime.Time) ||
			s.CompletionTime.Equal(b.CompletionTime) && !s.StartTime.Before(b.StartTime) {
			best = i
		}
	}
	return best
}
