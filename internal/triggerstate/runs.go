package triggerstate

import "github.com/flow-ci/flow-ci/api/v1alpha1"

// RecordCreated notes in status.runs that the trigger created (or adopted as its own)
// the run named name with uid: newest first, at most v1alpha1.MaxTriggerRuns, each UID
// once. The commit status reporter posts for these runs only.
func RecordCreated(st *v1alpha1.PipelineTriggerStatus, name, uid string) {
	out := make([]v1alpha1.TriggerRunRef, 0, min(len(st.Runs)+1, v1alpha1.MaxTriggerRuns))
	out = append(out, v1alpha1.TriggerRunRef{Name: name, UID: uid})
	for _, r := range st.Runs {
		if len(out) == v1alpha1.MaxTriggerRuns {
			break
		}
		if r.UID != uid {
			out = append(out, r)
		}
	}
	st.Runs = out
}

// Created reports whether status.runs records the run with uid as the trigger's own.
func Created(st *v1alpha1.PipelineTriggerStatus, uid string) bool {
	for _, r := range st.Runs {
		if uid != "" && r.UID == uid {
			return true
		}
	}
	return false
}
