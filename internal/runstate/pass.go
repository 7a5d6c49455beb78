package runstate

import (
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/shorten"
)

// Pass is how a reconcile pass went, for ConcludePass.
type Pass struct {
	// Ending, when set, ends the run: a permanent error, or a transient one that
	// lasted past its limit.
	Ending *Ending
	// Transient is an error the next pass retries; it is shown on the Reconciling
	// condition until a pass succeeds.
	Transient error
}

// ConcludePass records a pass's outcome in status: it ends the run with p.Ending, shows
// a transient error on the Reconciling condition (True, TransientError), and, once a
// pass succeeded, removes that condition and observes the run's generation.
func ConcludePass(run *v1alpha1.PipelineRun, p Pass, now metav1.Time) {
	if p.Ending != nil {
		End(run, *p.Ending, now)
		p.Transient = nil
	}
	if p.Transient != nil {
		apimeta.SetStatusCondition(&run.Status.Conditions, metav1.Condition{
			Type: v1alpha1.ConditionReconciling, Status: metav1.ConditionTrue,
			Reason: v1alpha1.ReasonTransientError, Message: shorten.Tail(p.Transient.Error(), v1alpha1.MaxMessageBytes),
			ObservedGeneration: run.Generation,
		})
		return
	}
	apimeta.RemoveStatusCondition(&run.Status.Conditions, v1alpha1.ConditionReconciling)
	Observe(run)
}

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
