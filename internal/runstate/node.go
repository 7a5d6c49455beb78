package runstate

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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

// LostRunPod says whether p may be released when the run with UID uid ended NodeLost
// and p's node is lost: a pod of one of the run's Jobs (its UID label and a Job as its
// controller) that was bound to a node and has not finished. A tenant can label a pod
// of their own so, in the run's namespace; the operator then deletes it only as they
// could themselves, and a pod without a Job controller, of another run, or finished
// stays.
func LostRunPod(p *corev1.Pod, uid string) bool {
	ref := metav1.GetControllerOf(p)
	return ref != nil && ref.Kind == "Job" && ref.APIVersion == "batch/v1" && uid != "" && p.Labels[v1alpha1.LabelRunUID] == uid &&
		p.Spec.NodeName != "" && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}
