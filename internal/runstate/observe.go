package runstate

import "github.com/flow-ci/flow-ci/api/v1alpha1"

// Observe records that the status describes the run's current generation: in
// status.observedGeneration and in each condition's observedGeneration. Tools that
// wait on a condition (kubectl wait, kstatus) ignore one stamped with an older
// generation, so an edit of a finished run (a cancel, a new TTL) must re-stamp them,
// or they wait for ever. It reports whether anything changed.
func Observe(run *v1alpha1.PipelineRun) bool {
	changed := run.Status.ObservedGeneration != run.Generation
	run.Status.ObservedGeneration = run.Generation
	for i := range run.Status.Conditions {
		if c := &run.Status.Conditions[i]; c.ObservedGeneration != run.Generation {
			c.ObservedGeneration, changed = run.Generation, true
		}
	}
	return changed
}
