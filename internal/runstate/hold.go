package runstate

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// Holding is why a run pinned to one node still keeps its room there (render's hold):
// HoldWaiting while a step has not started (no Job yet: it waits for its dependencies,
// or for the clone), HoldBinding while a step's pod is not bound to the node yet (its
// Job has no pod, or the scheduler has not placed it), or HoldNone once every step
// that will run has its pod on the node, or was decided otherwise.
type Holding int

const (
	HoldNone Holding = iota
	HoldWaiting
	HoldBinding
)

// HoldFor judges a run's steps from their status, Jobs and pods.
func HoldFor(steps []v1alpha1.StepStatus, jobs map[int]*batchv1.Job, pods []corev1.Pod) Holding {
	binding := false
	for i, st := range steps {
		switch st.Phase {
		case v1alpha1.StepPending:
			return HoldWaiting
		case v1alpha1.StepRunning:
			job := jobs[i]
			if job == nil {
				continue // read from the API server when the cache lacks it; judged next pass
			}
			if p := LatestPod(pods, job); p == nil || p.Spec.NodeName == "" {
				binding = true
			}
		}
	}
	if binding {
		return HoldBinding
	}
	return HoldNone
}
