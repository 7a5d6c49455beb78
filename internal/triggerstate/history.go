package triggerstate

import (
	"sort"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// Limits are how many finished runs of one branch (or schedule) a trigger keeps:
// succeeded ones, and failed or cancelled ones. Negative keeps all.
type Limits struct {
	Succeeded, Failed int
}

// BeyondHistory returns the finished runs to delete: the oldest beyond each limit,
// ordered by completion (then creation, then name). Runs still active are never chosen.
func BeyondHistory(runs []*v1alpha1.PipelineRun, l Limits) []*v1alpha1.PipelineRun {
	var ok, failed []*v1alpha1.PipelineRun
	for _, run := range runs {
		switch {
		case run.Status.Phase == v1alpha1.PhaseSucceeded:
			ok = append(ok, run)
		case run.Status.Phase.IsFinished():
			failed = append(failed, run)
		}
	}
	var out []*v1alpha1.PipelineRun
	for _, set := range []struct {
		runs  []*v1alpha1.PipelineRun
		limit int
	}{{ok, l.Succeeded}, {failed, l.Failed}} {
		if set.limit < 0 || len(set.runs) <= set.limit {
			continue
		}
		sort.Slice(set.runs, func(i, j int) bool { return newer(set.runs[i], set.runs[j]) })
		out = append(out, set.runs[set.limit:]...)
	}
	return out
}

func newer(a, b *v1alpha1.PipelineRun) bool {
	ta, tb := a.CreationTimestamp.Time, b.CreationTimestamp.Time
	if a.Status.CompletionTime != nil && b.Status.CompletionTime != nil {
		ta, tb = a.Status.CompletionTime.Time, b.Status.CompletionTime.Time
	}
	if !ta.Equal(tb) {
		return ta.After(tb)
	}
	return a.Name > b.Name
}
