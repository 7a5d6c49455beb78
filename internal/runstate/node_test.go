package runstate

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

func nodePod(phase corev1.PodPhase, node string, ready corev1.ConditionStatus) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "step-pod"}, Spec: corev1.PodSpec{NodeName: node}}
	p.Status.Phase = phase
	if ready != "" {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}
	}
	return p
}

func readyNode(status corev1.ConditionStatus, since time.Time) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-b"}}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status,
		LastTransitionTime: metav1.NewTime(since), Reason: "NodeStatusUnknown", Message: "Kubelet stopped posting node status."}}
	return n
}

func TestCheckNode(t *testing.T) {
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	w := Watchdogs{NodeLost: time.Minute}
	for _, c := range []struct {
		name     string
		w        Watchdogs
		node     string
		got      *corev1.Node
		reason   string
		next     time.Time
		mentions string
	}{
		{name: "ready node", w: w, node: "node-b", got: readyNode(corev1.ConditionTrue, now.Add(-time.Hour))},
		{name: "not ready, within the watchdog", w: w, node: "node-b", got: readyNode(corev1.ConditionUnknown, now.Add(-20*time.Second)), next: now.Add(40 * time.Second)},
		{name: "not ready past it", w: w, node: "node-b", got: readyNode(corev1.ConditionUnknown, now.Add(-2*time.Minute)),
			reason: v1alpha1.ReasonNodeLost, mentions: "node node-b, where the run's workspace is, stopped answering at 2026-12-07T08:58:00Z"},
		{name: "a fault the kubelet reports is left to the node", w: w, node: "node-b", got: readyNode(corev1.ConditionFalse, now.Add(-2*time.Minute))},
		{name: "node deleted", w: w, node: "node-b", got: nil, reason: v1alpha1.ReasonNodeLost, mentions: "was deleted"},
		{name: "no node yet", w: w, node: "", got: nil},
		{name: "watchdog off", w: Watchdogs{}, node: "node-b", got: nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := c.w.CheckNode(c.node, c.got, now)
			if v.Reason != c.reason || !v.Next.Equal(c.next) {
				t.Fatalf("verdict %+v, want reason %q next %v", v, c.reason, c.next)
			}
			if !strings.Contains(v.Message, c.mentions) {
				t.Errorf("message %q does not say %q", v.Message, c.mentions)
			}
		})
	}
}

func TestNotReadyOnItsNode(t *testing.T) {
	deleting := nodePod(corev1.PodRunning, "node-b", corev1.ConditionFalse)
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	for _, c := range []struct {
		name string
		pod  *corev1.Pod
		want bool
	}{
		{"running and marked not ready", nodePod(corev1.PodRunning, "node-b", corev1.ConditionFalse), true},
		{"running and ready", nodePod(corev1.PodRunning, "node-b", corev1.ConditionTrue), false},
		{"running, no condition yet", nodePod(corev1.PodRunning, "node-b", ""), false},
		{"ended", nodePod(corev1.PodSucceeded, "node-b", corev1.ConditionFalse), false},
		{"pending", nodePod(corev1.PodPending, "node-b", corev1.ConditionFalse), false},
		{"being deleted", deleting, false},
		{"nil", nil, false},
	} {
		if got := NotReadyOnItsNode(c.pod); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
		if got := Watched(c.pod) != ""; got != c.want {
			t.Errorf("%s: watched %v, want %v", c.name, got, c.want)
		}
	}
}

func TestLostRunPod(t *testing.T) {
	const uid = "run-uid"
	job := metav1.OwnerReference{APIVersion: "batch/v1", Kind: "Job", Name: "r-step-0", UID: "job-uid", Controller: ptr.To(true)}
	pod := func(edit func(*corev1.Pod)) *corev1.Pod {
		p := nodePod(corev1.PodRunning, "node-b", corev1.ConditionFalse)
		p.Labels = map[string]string{v1alpha1.LabelRunUID: uid}
		p.OwnerReferences = []metav1.OwnerReference{job}
		if edit != nil {
			edit(p)
		}
		return p
	}
	for _, c := range []struct {
		name string
		pod  *corev1.Pod
		want bool
	}{
		{"the run's running step pod", pod(nil), true},
		{"the run's pending pod, bound", pod(func(p *corev1.Pod) { p.Status.Phase = corev1.PodPending }), true},
		{"a tenant's pod with the run's label and no controller", pod(func(p *corev1.Pod) { p.OwnerReferences = nil }), false},
		{"a tenant's pod with the label, owned but not controlled", pod(func(p *corev1.Pod) { p.OwnerReferences[0].Controller = nil }), false},
		{"a tenant's pod with the label, controlled by a ReplicaSet", pod(func(p *corev1.Pod) {
			p.OwnerReferences[0].Kind, p.OwnerReferences[0].APIVersion = "ReplicaSet", "apps/v1"
		}), false},
		{"a Job kind of another group", pod(func(p *corev1.Pod) { p.OwnerReferences[0].APIVersion = "example.com/v1" }), false},
		{"another run's pod", pod(func(p *corev1.Pod) { p.Labels[v1alpha1.LabelRunUID] = "other-uid" }), false},
		{"no run label", pod(func(p *corev1.Pod) { p.Labels = nil }), false},
		{"never bound to a node", pod(func(p *corev1.Pod) { p.Spec.NodeName = "" }), false},
		{"succeeded", pod(func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }), false},
		{"failed", pod(func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := LostRunPod(c.pod, uid); got != c.want {
				t.Errorf("LostRunPod = %v, want %v", got, c.want)
			}
		})
	}
	if LostRunPod(pod(func(p *corev1.Pod) { p.Labels[v1alpha1.LabelRunUID] = "" }), "") {
		t.Error("an empty run UID matches a pod with an empty label")
	}
}
