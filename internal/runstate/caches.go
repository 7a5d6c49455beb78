package runstate

import (
	"encoding/json"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/shorten"
)

// cacheReports reads the caches report on the last line of a termination message written
// by the operator's own binary (the clone, the saving step), nil when there is none.
func cacheReports(msg string) []v1alpha1.CacheStatus {
	msg = strings.TrimRight(msg, "\n")
	line := msg[strings.LastIndex(msg, "\n")+1:]
	raw, ok := strings.CutPrefix(line, v1alpha1.CachesReportPrefix)
	if !ok {
		return nil
	}
	var out []v1alpha1.CacheStatus
	if json.Unmarshal([]byte(raw), &out) != nil || len(out) > v1alpha1.MaxRunCaches {
		return nil
	}
	for i := range out {
		clampCache(&out[i])
	}
	return out
}

// clampCache bounds a report to what status holds: a value over the schema's limits
// would make every later status patch of the run invalid.
func clampCache(c *v1alpha1.CacheStatus) {
	c.Name, c.Key, c.RestoredKey = shorten.Head(c.Name, 32), shorten.Head(c.Key, 128), shorten.Head(c.RestoredKey, 128)
	c.RestoredFrom, c.Message = shorten.Head(c.RestoredFrom, 255), shorten.Head(c.Message, 512)
	c.RestoredBytes, c.SavedBytes = max(c.RestoredBytes, 0), max(c.SavedBytes, 0)
}

// RecordCaches copies into status.caches what the clone restored, once its Job is
// complete, and what the saving step (index save, -1 when the run has none) saved once
// it ended: from their pods' termination messages, merged by cache name.
func RecordCaches(run *v1alpha1.PipelineRun, clone *batchv1.Job, saveJob *batchv1.Job, pods []corev1.Pod) {
	st := &run.Status
	if clone != nil && JobOutcome(clone) == batchv1.JobComplete && len(st.Caches) == 0 {
		if t := Terminated(LatestPod(pods, clone)); t != nil {
			st.Caches = cacheReports(t.Message)
		}
	}
	if saveJob == nil || JobOutcome(saveJob) == "" {
		return
	}
	t := Terminated(LatestPod(pods, saveJob))
	if t == nil {
		return
	}
	for _, r := range cacheReports(t.Message) {
		mergeSaved(st, r)
	}
}

// mergeSaved sets the save fields of the cache r names.
func mergeSaved(st *v1alpha1.PipelineRunStatus, r v1alpha1.CacheStatus) {
	for i := range st.Caches {
		c := &st.Caches[i]
		if c.Name == r.Name {
			c.Saved, c.SavedBytes, c.SaveTime = r.Saved, r.SavedBytes, r.SaveTime
			if r.Message != "" {
				c.Message = r.Message
			}
			return
		}
	}
	if len(st.Caches) < v1alpha1.MaxRunCaches {
		st.Caches = append(st.Caches, v1alpha1.CacheStatus{Name: r.Name, Key: r.Key, Saved: r.Saved, SavedBytes: r.SavedBytes,
			SaveTime: r.SaveTime, Message: r.Message})
	}
}
