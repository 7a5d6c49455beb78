package runstate

import (
	"sort"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// HistoryLimits are how many finished runs of a group to keep: succeeded ones, and
// failed or cancelled ones. A negative limit keeps all.
type HistoryLimits struct {
	Succeeded, Failed int
}

// BeyondHistory returns the finished runs to delete: the oldest beyond each limit, by
// EndedBefore. Runs still active are never chosen. The PipelineRun controller applies it
// per repository and branch, a PipelineTrigger per branch and per schedule.
func BeyondHistory(runs []*v1alpha1.PipelineRun, l HistoryLimits) []*v1alpha1.PipelineRun {
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
		sort.Slice(set.runs, func(i, j int) bool { return EndedBefore(set.runs[j], set.runs[i]) }) // newest first
		out = append(out, set.runs[set.limit:]...)
	}
	return out
}

// EndedBefore orders finished runs by completion, then by creation (CreatedBefore).
func EndedBefore(a, b *v1alpha1.PipelineRun) bool {
	ta, tb := a.CreationTimestamp.Time, b.CreationTimestamp.Time
	if a.Status.CompletionTime != nil && b.Status.CompletionTime != nil {
		ta, tb = a.Status.CompletionTime.Time, b.Status.CompletionTime.Time
	}
	if !ta.Equal(tb) {
		return ta.Before(tb)
	}
	return CreatedBefore(a, b)
}

// CreatedBefore orders runs by creation, then name, so every reconciler sees one queue.
func CreatedBefore(a, b *v1alpha1.PipelineRun) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

// BeyondNamespaceLimit is how many of a namespace's finished runs to delete, oldest
// first, when it holds held of them: none until it holds more than limit plus a tenth,
// then down to limit. The per-branch and per-trigger limits delete a run as another of
// their branch ends, at the same moment as this check and through other caches: without
// the slack, a namespace that holds exactly its limit of such runs would lose a second
// run at many ends, one its branch's limit keeps. A negative limit keeps all.
func BeyondNamespaceLimit(held, limit int) int {
	if limit < 0 || held <= limit+limit/10 {
		return 0
	}
	return held - limit
}

// Oldest returns the n finished runs that ended first (EndedBefore), for a limit on
// all the finished runs of a namespace. runs is reordered.
func Oldest(runs []*v1alpha1.PipelineRun, n int) []*v1alpha1.PipelineRun {
	if n <= 0 {
		return nil
	}
	sort.Slice(runs, func(i, j int) bool { return EndedBefore(runs[i], runs[j]) })
	return runs[:min(n, len(runs))]
}
