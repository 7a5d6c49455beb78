package runstate

import "github.com/flow-ci/flow-ci/api/v1alpha1"

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
