package runstate

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// Watchdogs bounds how long a pod may wait before its step fails, so that no run stays
// Running forever on a pod that will never start.
type Watchdogs struct {
	// Unschedulable bounds a pod that is pending and not scheduled.
	Unschedulable time.Duration
	// ImagePull bounds ErrImagePull, ImagePullBackOff and CreateContainerConfigError.
	ImagePull time.Duration
	// NodeLost bounds how long a pod's node may not be Ready (node.go).
	NodeLost time.Duration
}

// Verdict is a watchdog's decision about one pod: a failure reason with its message, or
// the time at which the pod must be looked at again (Next).
type Verdict struct {
	Reason, Message string
	Next            time.Time
}

// CheckPod applies the watchdogs to a pod at now. A pod that runs or ended is fine.
func (w Watchdogs) CheckPod(p *corev1.Pod, now time.Time) Verdict {
	if p == nil || p.Status.Phase != corev1.PodPending || !p.DeletionTimestamp.IsZero() {
		return Verdict{}
	}
	scheduled := podCondition(p, corev1.PodScheduled)
	if scheduled == nil || scheduled.Status != corev1.ConditionTrue {
		since, why := p.CreationTimestamp.Time, "not scheduled yet"
		if scheduled != nil {
			since, why = scheduled.LastTransitionTime.Time, scheduled.Reason+": "+scheduled.Message
		}
		return w.expire(since, w.Unschedulable, now, v1alpha1.ReasonUnschedulable,
			fmt.Sprintf("pod %s was pending for more than %s: %s", p.Name, w.Unschedulable, why))
	}
	if cs := ServiceNotReady(p); cs != nil {
		return Verdict{Reason: v1alpha1.ReasonServiceNotReady, Message: serviceMessage(cs)}
	}
	for _, cs := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		wt := cs.State.Waiting
		if wt == nil {
			continue
		}
		reason := waitingReason(wt.Reason)
		if reason == "" {
			continue
		}
		// Pulling starts once the pod is bound to a node.
		return w.expire(scheduled.LastTransitionTime.Time, w.ImagePull, now, reason,
			fmt.Sprintf("image %s of container %s: %s: %s", cs.Image, cs.Name, wt.Reason, wt.Message))
	}
	return Verdict{}
}

// waitingReason is the step failure reason a container's waiting reason leads to once
// the image pull watchdog expires, or "" for a wait no watchdog judges.
func waitingReason(waiting string) string {
	switch waiting {
	case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull":
		return v1alpha1.ReasonImagePullFailed
	case "CreateContainerConfigError", "CreateContainerError":
		return v1alpha1.ReasonCreateContainerFailed
	}
	return ""
}

// Watched names the state of a pod that a watchdog acts on: pending and refused by the
// scheduler (its PodScheduled condition False, with the reason), or a container waiting
// for an image or a config it cannot get; "" for any other state. A pod's event
// reconciles its run only when this changes to a state, so that the run's pass sets
// the watchdog's deadline; a pod that is merely created, pulling or running does not.
func Watched(p *corev1.Pod) string {
	if NotReadyOnItsNode(p) {
		return "not-ready:" + p.Spec.NodeName
	}
	if p == nil || p.Status.Phase != corev1.PodPending || !p.DeletionTimestamp.IsZero() {
		return ""
	}
	if c := Unscheduled(p); c != nil {
		return "unschedulable:" + c.Reason
	}
	if cs := ServiceNotReady(p); cs != nil {
		return "service:" + cs.Name
	}
	for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, cs := range list {
			if w := cs.State.Waiting; w != nil && waitingReason(w.Reason) != "" {
				return "waiting:" + cs.Name + ":" + w.Reason
			}
		}
	}
	return ""
}

// Unscheduled is the PodScheduled condition of a pending pod the scheduler has not
// placed (refused, with its reason), and nil for any other pod.
func Unscheduled(p *corev1.Pod) *corev1.PodCondition {
	if p == nil || p.Status.Phase != corev1.PodPending || !p.DeletionTimestamp.IsZero() {
		return nil
	}
	if c := podCondition(p, corev1.PodScheduled); c != nil && c.Status != corev1.ConditionTrue {
		return c
	}
	return nil
}

func (w Watchdogs) expire(since time.Time, limit time.Duration, now time.Time, reason, msg string) Verdict {
	if limit <= 0 {
		return Verdict{}
	}
	if deadline := since.Add(limit); now.Before(deadline) {
		return Verdict{Next: deadline}
	}
	return Verdict{Reason: reason, Message: msg}
}

func podCondition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}
