package runstate

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

func TestCheckPod(t *testing.T) {
	w := Watchdogs{Unschedulable: 10 * time.Minute, ImagePull: 2 * time.Minute}
	created := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	pod := func(phase corev1.PodPhase, conds []corev1.PodCondition, waiting string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", CreationTimestamp: metav1.NewTime(created)},
			Status: corev1.PodStatus{Phase: phase, Conditions: conds}}
		if waiting != "" {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "step", Image: "ghcr.io/x/y:1",
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: waiting, Message: "detail"}}}}
		}
		return p
	}
	scheduledAt := func(d time.Duration) []corev1.PodCondition {
		return []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(created.Add(d))}}
	}
	unschedulable := []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable",
		Message: "0/1 nodes are available", LastTransitionTime: metav1.NewTime(created.Add(time.Minute))}}
	cases := []struct {
		name string
		pod  *corev1.Pod
		now  time.Duration // after creation
		want Verdict
	}{
		{"no pod", nil, time.Hour, Verdict{}},
		{"running", pod(corev1.PodRunning, scheduledAt(0), ""), time.Hour, Verdict{}},
		{"not scheduled yet, in time", pod(corev1.PodPending, nil, ""), 5 * time.Minute, Verdict{Next: created.Add(10 * time.Minute)}},
		{"not scheduled for too long", pod(corev1.PodPending, nil, ""), 10 * time.Minute,
			Verdict{Reason: v1alpha1.ReasonUnschedulable, Message: "pod p was pending for more than 10m0s: not scheduled yet"}},
		{"unschedulable counts from the condition", pod(corev1.PodPending, unschedulable, ""), 10 * time.Minute,
			Verdict{Next: created.Add(11 * time.Minute)}},
		{"unschedulable too long", pod(corev1.PodPending, unschedulable, ""), 11 * time.Minute,
			Verdict{Reason: v1alpha1.ReasonUnschedulable, Message: "pod p was pending for more than 10m0s: Unschedulable: 0/1 nodes are available"}},
		{"pulling, in time", pod(corev1.PodPending, scheduledAt(time.Minute), "ImagePullBackOff"), 2 * time.Minute,
			Verdict{Next: created.Add(3 * time.Minute)}},
		{"pull failing too long", pod(corev1.PodPending, scheduledAt(time.Minute), "ErrImagePull"), 3 * time.Minute,
			Verdict{Reason: v1alpha1.ReasonImagePullFailed, Message: "image ghcr.io/x/y:1 of container step: ErrImagePull: detail"}},
		{"config error too long", pod(corev1.PodPending, scheduledAt(0), "CreateContainerConfigError"), 2 * time.Minute,
			Verdict{Reason: v1alpha1.ReasonCreateContainerFailed, Message: "image ghcr.io/x/y:1 of container step: CreateContainerConfigError: detail"}},
		{"container creating is fine", pod(corev1.PodPending, scheduledAt(0), "ContainerCreating"), time.Hour, Verdict{}},
		{"disabled", pod(corev1.PodPending, nil, ""), time.Hour, Verdict{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wd := w
			if tc.name == "disabled" {
				wd = Watchdogs{}
			}
			got := wd.CheckPod(tc.pod, created.Add(tc.now))
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(Verdict{})); diff != "" {
				t.Errorf("CheckPod (-want +got):\n%s", diff)
			}
		})
	}
}
