package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

// describeTiming prints where the run's time went, and its flaky steps.
func describeTiming(scr *screen, run *v1alpha1.PipelineRun) {
	for _, l := range timingLines(run) {
		scr.line(l)
	}
}

// timingLines are the run's queue, admission and clone, each step's phases, the
// critical path and the flaky steps (docs/timeline.md); none for a run that did not
// start.
func timingLines(run *v1alpha1.PipelineRun) []string {
	st := &run.Status
	if st.StartTime == nil {
		return nil
	}
	out := []string{"Where the time went:"}
	d := func(a, b time.Time) string { return b.Sub(a).Round(time.Second).String() }
	out = append(out, fmt.Sprintf("  queued      %s", d(run.CreationTimestamp.Time, st.StartTime.Time)))
	var graphStart = st.StartTime
	if t := st.Timing; t != nil && t.CloneStartTime != nil && t.CloneCompletionTime != nil {
		out = append(out, fmt.Sprintf("  admission   %s (commit, definition, workspace)", d(st.StartTime.Time, t.CloneStartTime.Time)),
			fmt.Sprintf("  clone       %s", d(t.CloneStartTime.Time, t.CloneCompletionTime.Time)))
		graphStart = t.CloneCompletionTime
	}
	width := 0
	for _, s := range st.Steps {
		width = max(width, len(s.Name))
	}
	for _, s := range st.Steps {
		spans := runstate.StepSpans(s, graphStart)
		if len(spans) == 0 {
			continue
		}
		parts := make([]string, len(spans))
		for i, sp := range spans {
			parts[i] = fmt.Sprintf("%s %s", sp.Phase, sp.Duration().Round(time.Second))
		}
		out = append(out, fmt.Sprintf("  %-*s  %s", width, s.Name, strings.Join(parts, " · ")))
	}
	if t := st.Timing; t != nil && len(t.CriticalPath) > 0 {
		line := "  critical path: " + strings.Join(t.CriticalPath, " → ")
		if st.CompletionTime != nil {
			line += fmt.Sprintf(" (the run took %s)", d(st.StartTime.Time, st.CompletionTime.Time))
		}
		out = append(out, line)
	}
	var flaky []string
	for _, s := range st.Steps {
		if s.Flaky {
			flaky = append(flaky, fmt.Sprintf("%s (succeeded on attempt %d)", s.Name, s.Attempts))
		}
	}
	if len(flaky) > 0 {
		out = append(out, "Flaky: "+strings.Join(flaky, ", "))
	}
	return out
}
