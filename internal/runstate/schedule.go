package runstate

import "github.com/flow-ci/flow-ci/api/v1alpha1"

// Ready lists the steps that may start now, in index order. Steps run in sequence: a
// step is ready when it is Pending and every step before it Succeeded. Callers start
// every step it returns and assume nothing about how many there are.
func Ready(steps []v1alpha1.StepStatus) []int {
	for i, s := range steps {
		switch s.Phase {
		case v1alpha1.StepSucceeded:
			continue
		case v1alpha1.StepPending:
			return []int{i}
		}
		return nil
	}
	return nil
}

// Active lists the steps that run now, in index order.
func Active(steps []v1alpha1.StepStatus) []int {
	var out []int
	for i, s := range steps {
		if s.Phase == v1alpha1.StepRunning {
			out = append(out, i)
		}
	}
	return out
}
