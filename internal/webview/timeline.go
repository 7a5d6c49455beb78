package webview

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

// timeline is a run drawn on one time axis: a row for its queue, admission and clone,
// then one per step that had a Job, each split into its phases (runstate.StepSpans);
// the steps of the critical path are marked.
type timeline struct {
	Rows  []timelineRow
	Total string
	Path  string
}

type timelineRow struct {
	Name            string
	Critical, Flaky bool
	Segments        []segment
}

// segment is one phase: Left and Width are percentages of the axis.
type segment struct {
	Class, Title string
	Left, Width  float64
}

// phaseClass is a phase's CSS class; a joined phase ("preparing, pulling") takes its
// first's.
var phaseClass = map[string]string{
	runstate.PhaseWaiting: "waiting", runstate.PhaseHandoff: "handoff", runstate.PhaseRetries: "retries",
	runstate.PhaseScheduling: "scheduling", runstate.PhasePreparing: "preparing", runstate.PhasePulling: "pulling",
	runstate.PhaseRunning: "running", "queued": "queued", "admission": "admission", "clone": "clone",
}

// timelineOf draws a run that started; now ends the axis of a run still running.
func timelineOf(run *v1alpha1.PipelineRun, now time.Time) timeline {
	st := &run.Status
	if st.StartTime == nil {
		return timeline{}
	}
	start, end := run.CreationTimestamp.Time, now
	if st.CompletionTime != nil {
		end = st.CompletionTime.Time
	}
	if !end.After(start) {
		end = start.Add(time.Second)
	}
	axis := end.Sub(start)
	seg := func(phase string, a, b time.Time) segment {
		a, b = clamp(a, start, end), clamp(b, start, end)
		class := phaseClass[strings.SplitN(phase, ", ", 2)[0]]
		return segment{Class: class, Title: fmt.Sprintf("%s %s", phase, b.Sub(a).Round(time.Second)),
			Left: pct(a.Sub(start), axis), Width: pct(b.Sub(a), axis)}
	}
	run0 := timelineRow{Name: "(run)", Segments: []segment{seg("queued", start, st.StartTime.Time)}}
	graphStart := st.StartTime
	if t := st.Timing; t != nil && t.CloneStartTime != nil && t.CloneCompletionTime != nil {
		run0.Segments = append(run0.Segments, seg("admission", st.StartTime.Time, t.CloneStartTime.Time),
			seg("clone", t.CloneStartTime.Time, t.CloneCompletionTime.Time))
		graphStart = t.CloneCompletionTime
	}
	tl := timeline{Rows: []timelineRow{run0}, Total: axis.Round(time.Second).String()}
	var path []string
	if st.Timing != nil {
		path = st.Timing.CriticalPath
		tl.Path = strings.Join(path, " → ")
	}
	for _, s := range st.Steps {
		row := timelineRow{Name: s.Name, Critical: slices.Contains(path, s.Name), Flaky: s.Flaky}
		for _, sp := range runstate.StepSpans(s, graphStart) {
			row.Segments = append(row.Segments, seg(sp.Phase, sp.Start, sp.End))
		}
		if len(row.Segments) == 0 && s.Phase == v1alpha1.StepRunning && s.StartTime != nil {
			row.Segments = []segment{seg(runstate.PhaseRunning, s.StartTime.Time, end)} // still under way
		}
		if len(row.Segments) > 0 {
			tl.Rows = append(tl.Rows, row)
		}
	}
	return tl
}

func clamp(t, lo, hi time.Time) time.Time {
	switch {
	case t.Before(lo):
		return lo
	case t.After(hi):
		return hi
	}
	return t
}

// pct is d as a percentage of axis, to 0.01.
func pct(d, axis time.Duration) float64 {
	return float64(int64(float64(d)/float64(axis)*10000)) / 100
}
