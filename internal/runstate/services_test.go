package runstate

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// TestServiceNotReady: a pending step pod whose service was restarted before it got
// ready fails the step at once; a service still starting, one that got ready, and an
// ordinary init container are left alone.
func TestServiceNotReady(t *testing.T) {
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	pod := func(phase corev1.PodPhase, statuses ...corev1.ContainerStatus) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", CreationTimestamp: metav1.NewTime(at)},
			Status: corev1.PodStatus{Phase: phase, InitContainerStatuses: statuses,
				Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(at)}}}}
	}
	restarted := func(name string, started bool, exit int32) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: name, RestartCount: 2, Started: &started,
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: exit}}}
	}
	starting := corev1.ContainerStatus{Name: "service-db", Started: new(false)}
	w := Watchdogs{Unschedulable: time.Minute, ImagePull: time.Minute}
	for _, c := range []struct {
		name    string
		pod     *corev1.Pod
		want    string // the verdict's message
		watched string
	}{
		{"starting", pod(corev1.PodPending, starting), "", ""},
		{"restarted before ready", pod(corev1.PodPending, corev1.ContainerStatus{Name: "flowci-mask"}, restarted("service-db", false, 137)),
			"service db was not ready: it was restarted 2 time(s) before the step could start (last exit code 137)", "service:service-db"},
		{"restarted once the pod was initialized (the step's image pulls)", func() *corev1.Pod {
			p := pod(corev1.PodPending, restarted("service-db", false, 1))
			p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionTrue})
			return p
		}(), "", ""},
		{"ready after restarts", pod(corev1.PodPending, restarted("service-db", true, 1)), "", ""},
		{"running pod", pod(corev1.PodRunning, restarted("service-db", false, 1)), "", ""},
		{"not a service", pod(corev1.PodPending, restarted("flowci-mask", false, 1)), "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := w.CheckPod(c.pod, at.Add(time.Second))
			if v.Message != c.want || (c.want != "") != (v.Reason == v1alpha1.ReasonServiceNotReady) {
				t.Errorf("verdict %+v, want message %q", v, c.want)
			}
			if got := Watched(c.pod); got != c.watched {
				t.Errorf("Watched = %q, want %q", got, c.watched)
			}
		})
	}
}

// TestWatchdogFailuresAreTheSteps: every reason a pod watchdog fails a step with counts
// as the step's own failure, so the run fails (a reason missing from ownFailures made a
// step that never ran count as allowed to fail, and its run succeed).
func TestWatchdogFailuresAreTheSteps(t *testing.T) {
	reasons := []string{v1alpha1.ReasonUnschedulable, v1alpha1.ReasonServiceNotReady}
	for _, w := range []string{"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "CreateContainerConfigError", "CreateContainerError"} {
		reasons = append(reasons, waitingReason(w))
	}
	for _, r := range reasons {
		if !ownFailures[r] {
			t.Errorf("a step failed with %s does not fail its run", r)
		}
	}
}
