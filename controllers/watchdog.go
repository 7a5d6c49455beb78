package controllers

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
)

// Watchdogs bounds how long a pod may wait before its step fails, so that no run stays
// Running forever on a pod that will never start.
type Watchdogs struct {
	// Unschedulable bounds a pod that is pending and not scheduled.
	Unschedulable time.Duration
	// ImagePull bounds ErrImagePull, ImagePullBackOff and CreateContainerConfigError.
	ImagePull time.Duration
}

// verdict is a watchdog's decision about one pod: a failure reason with its message, or
// the time at which the pod must be looked at again ("next").
type verdict struct {
	reason, message string
	next            time.Time
}

// checkPod applies the watchdogs to a pod at now. A pod that runs or ended is fine.
func (w Watchdogs) checkPod(p *corev1.Pod, now time.Time) verdict {
	if p == nil || p.Status.Phase != corev1.PodPending || !p.DeletionTimestamp.IsZero() {
		return verdict{}
	}
	scheduled := podCondition(p, corev1.PodScheduled)
	if scheduled == nil || scheduled.Status != corev1.ConditionTrue {
		since, why := p.CreationTimestamp.Time, "not scheduled yet"
		if scheduled != nil {
			since, why = scheduled.LastTransitionTime.Time, scheduled.Reason+": "+scheduled.Message
		}
		return w.expire(since, w.Unschedulable, now, civ1alpha1.ReasonUnschedulable,
			fmt.Sprintf("pod %s was pending for more than %s: %s", p.Name, w.Unschedulable, why))
	}
	for _, cs := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		wt := cs.State.Waiting
		if wt == nil {
			continue
		}
		reason := ""
		switch wt.Reason {
		case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull":
			reason = civ1alpha1.ReasonImagePullFailed
		case "CreateContainerConfigError", "CreateContainerError":
			reason = civ1alpha1.ReasonCreateContainerFailed
		default:
			continue
		}
		// Pulling starts once the pod is bound to a node.
		return w.expire(scheduled.LastTransitionTime.Time, w.ImagePull, now, reason,
			fmt.Sprintf("image %s of container %s: %s: %s", cs.Image, cs.Name, wt.Reason, wt.Message))
	}
	return verdict{}
}

func (w Watchdogs) expire(since time.Time, limit time.Duration, now time.Time, reason, msg string) verdict {
	if limit <= 0 {
		return verdict{}
	}
	if deadline := since.Add(limit); now.Before(deadline) {
		return verdict{next: deadline}
	}
	return verdict{reason: reason, message: msg}
}

func podCondition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}
