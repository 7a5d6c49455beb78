package runstate

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// NotReadyOnItsNode says whether a running pod is marked not ready, which for a step (no
// probes, restartPolicy Never) means its node stopped answering: the node controller
// marks the pods of an unreachable node so. Its event reconciles the run (Watched), whose
// pass then judges the node (CheckNode).
func NotReadyOnItsNode(p *corev1.Pod) bool {
	if p == nil || p.Spec.NodeName == "" || p.Status.Phase != corev1.PodRunning || !p.DeletionTimestamp.IsZero() {
		return false
	}
	c := podCondition(p, corev1.PodReady)
	return c != nil && c.Status == corev1.ConditionFalse
}

// CheckNode judges the node a run's workspace is bound to (where its clone ran, and its
// step pods run): once its kubelet stopped posting status (Ready Unknown) for NodeLost,
// or the Node is gone (node nil), the run fails with NodeLost, since a ReadWriteOnce
// workspace bound to it went with it. A node that reports itself not Ready (a runtime or
// network fault, pressure a tenant could cause) still runs its pods: it is left to them.
func (w Watchdogs) CheckNode(name string, node *corev1.Node, now time.Time) Verdict {
	if w.NodeLost <= 0 || name == "" {
		return Verdict{}
	}
	if node == nil {
		return Verdict{Reason: v1alpha1.ReasonNodeLost,
			Message: fmt.Sprintf("node %s, where the run's workspace is, was deleted", name)}
	}
	ready := Unanswering(node)
	if ready == nil {
		return Verdict{}
	}
	return w.expire(ready.LastTransitionTime.Time, w.NodeLost, now, v1alpha1.ReasonNodeLost,
		fmt.Sprintf("node %s, where the run's workspace is, stopped answering at %s (its kubelet posts no status), more than %s ago",
			name, ready.LastTransitionTime.UTC().Format(time.RFC3339), w.NodeLost))
}

// Unanswering is a node's Ready condition when its kubelet stopped posting status (the
// node controller set it Unknown), and nil for a node that answers.
func Unanswering(node *corev1.Node) *corev1.NodeCondition {
	for i := range node.Status.Conditions {
		if c := &node.Status.Conditions[i]; c.Type == corev1.NodeReady {
			if c.Status == corev1.ConditionUnknown {
				return c
			}
			return nil
		}
	}
	return nil
}
