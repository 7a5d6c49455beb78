package render

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// A run whose workspace pins its pods to one node needs room there for its steps. The
// clone pod requests their peak, so it lands on a node that has it; once the clone
// ends, that room is free for any pending pod. The hold keeps it until the last step
// has started: a pod that the scheduler never binds (a scheduling gate that is never
// lifted) with the peak's requests, whose status.nominatedNodeName the operator sets to
// the run's node. The scheduler counts a nominated pod's requests against every pod of
// its priority or lower, so pods of the default priority do not get that room; the
// run's steps, one class higher (StepPriorityClass), do. The hold runs nothing and
// uses nothing on the node: only the scheduler's view of it.

// holdDeadlineSeconds stops the hold's container at once should someone lift its gate.
const holdDeadlineSeconds = 1

// HoldPodName is the name of the run's hold pod.
func HoldPodName(run *v1alpha1.PipelineRun) string {
	return childName(run.Name, "-hold", identity(run.Name, v1alpha1.ComponentHold))
}

// RenderHoldPod renders the hold of a run pinned to node, keeping requests (the
// steps' peak) there.
func RenderHoldPod(run *v1alpha1.PipelineRun, cfg Config, node string, requests corev1.ResourceList) *corev1.Pod {
	labels := Labels(run, v1alpha1.ComponentHold)
	return &corev1.Pod{
		ObjectMeta: objectMeta(run, HoldPodName(run), labels),
		Spec: corev1.PodSpec{
			SchedulingGates:               []corev1.PodSchedulingGate{{Name: v1alpha1.SchedulingGateHold}},
			RestartPolicy:                 corev1.RestartPolicyNever,
			ActiveDeadlineSeconds:         new(int64(holdDeadlineSeconds)),
			TerminationGracePeriodSeconds: new(int64(0)),
			AutomountServiceAccountToken:  new(false),
			EnableServiceLinks:            new(false),
			SecurityContext:               podSecurityContext(),
			Affinity:                      pinToNode(node),
			Containers: []corev1.Container{{
				Name:            "hold",
				Image:           cfg.CloneImage,
				ImagePullPolicy: cfg.ImagePullPolicy,
				Args:            []string{"hold"},
				Resources:       corev1.ResourceRequirements{Requests: requests.DeepCopy()},
				SecurityContext: containerSecurityContext(true),
			}},
		},
	}
}

// stepPriorityClass is the class of a step pinned to node (none when it is not).
func stepPriorityClass(node string, cfg Config) string {
	if node == "" {
		return ""
	}
	return cfg.StepPriorityClass
}

// StepClassProblem says why the PriorityClass name cannot carry the hold's steps among
// the cluster's classes ("" when it can): it must exist and rank above the priority of
// pods that name no class (the globalDefault class's, else 0), or the steps would wait
// behind their own run's hold.
func StepClassProblem(name string, classes []schedulingv1.PriorityClass) string {
	var own *int32
	def := int32(0)
	for i := range classes {
		c := &classes[i]
		if c.Name == name {
			own = &c.Value
		}
		if c.GlobalDefault {
			def = c.Value
		}
	}
	switch {
	case own == nil:
		return fmt.Sprintf("the PriorityClass %q does not exist", name)
	case *own <= def:
		return fmt.Sprintf("the PriorityClass %q (%d) does not rank above the default priority (%d)", name, *own, def)
	}
	return ""
}
