package runstate

import (
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// Names of a step's phases, in order (docs/timeline.md).
const (
	PhaseWaiting    = "waiting"          // for its dependencies, from the clone's end
	PhaseHandoff    = "handoff"          // from ready to its Job's creation
	PhaseRetries    = "earlier attempts" // from the Job to its last pod (a retried step)
	PhaseScheduling = "scheduling"       // from the pod's creation to its node
	PhasePreparing  = "preparing"        // init containers: images, helpers, services
	PhasePulling    = "pulling"          // the step's image and container
	PhaseRunning    = "running"          // the step's container, to the step's end
)

// Span is one phase of a step: from Start to End.
type Span struct {
	Phase      string
	Start, End time.Time
}

// Duration is the span's length.
func (s Span) Duration() time.Duration { return s.End.Sub(s.Start) }

// StepSpans splits the time of a step that ended into its phases, from the run's clone
// end (graphStart, nil when unknown) to the step's end. A phase whose start was not
// observed is joined to the one before it ("scheduling, preparing"); a step that never
// had a Job has none.
func StepSpans(s v1alpha1.StepStatus, graphStart *metav1.Time) []Span {
	t := s.Timing
	if t == nil || s.CompletionTime == nil {
		return nil
	}
	podCreated := t.PodCreationTime
	if s.Attempts <= 1 {
		podCreated = nil // the same moment as the Job's, give or take the Job controller
	}
	type mark struct {
		phase string
		at    *metav1.Time
	}
	marks := []mark{{PhaseWaiting, graphStart}, {PhaseHandoff, t.ReadyTime}}
	if podCreated != nil {
		// The Job's creation begins the earlier attempts, its last pod's the scheduling.
		marks = append(marks, mark{PhaseRetries, t.JobCreationTime}, mark{PhaseScheduling, podCreated})
	} else {
		marks = append(marks, mark{PhaseScheduling, t.JobCreationTime})
	}
	marks = append(marks, mark{PhasePreparing, t.ScheduledTime}, mark{PhasePulling, t.InitializedTime},
		mark{PhaseRunning, t.ContainerStartTime}, mark{"", s.CompletionTime})
	var out []Span
	start, names := -1, []string(nil)
	for i, m := range marks {
		if m.at == nil {
			if start >= 0 && m.phase != "" {
				names = append(names, m.phase)
			}
			continue
		}
		if start >= 0 {
			end := m.at.Time
			if begin := marks[start].at.Time; !end.Before(begin) {
				out = append(out, Span{Phase: strings.Join(names, ", "), Start: begin, End: end})
			}
		}
		start, names = i, []string{m.phase}
	}
	return out
}
