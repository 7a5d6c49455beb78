package bench

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// The shapes of what the kubelet and the Job controller write, so that the operator's
// informers decode, trim and keep objects of their real size: every condition, the
// pod's IPs, container IDs and image digests, and the Job's counters.

const (
	benchHostIP = "10.0.0.4"
	// jobTracking is the finalizer the Job controller puts on its pods and removes
	// once it has counted the pod's end.
	jobTracking = "batch.kubernetes.io/job-tracking"
)

// digest is a stable, realistic-looking sha256 of s.
func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// podIP gives every pod its own address, from its UID.
func podIP(uid types.UID) string {
	d := digest(string(uid))
	return fmt.Sprintf("10.244.%d.%d", int(d[0])%250, 2+int(d[1])%250)
}

func podCond(t corev1.PodConditionType, ok bool, reason string, at metav1.Time) corev1.PodCondition {
	s := corev1.ConditionFalse
	if ok {
		s = corev1.ConditionTrue
	}
	return corev1.PodCondition{Type: t, Status: s, Reason: reason, LastTransitionTime: at}
}

// containerStatuses gives each container of the pod the state state() returns for it,
// with the kubelet's image digest and container ID.
func containerStatuses(pod *corev1.Pod, ready bool, state func(c corev1.Container) corev1.ContainerState) []corev1.ContainerStatus {
	var out []corev1.ContainerStatus
	for _, c := range pod.Spec.Containers {
		st := corev1.ContainerStatus{Name: c.Name, Image: c.Image, State: state(c), Ready: ready, Started: ptr.To(ready),
			ImageID: "docker.io/library/" + c.Image + "@sha256:" + digest(c.Image)}
		if st.State.Waiting == nil {
			st.ContainerID = "containerd://" + digest(string(pod.UID)+c.Name)
		}
		out = append(out, st)
	}
	return out
}

// podStatuses are the kubelet's three status updates of a pod that runs to success:
// scheduled and creating its containers, running and ready, succeeded.
func podStatuses(pod *corev1.Pod, start, end time.Time) []corev1.PodStatus {
	t0, t1 := metav1.NewTime(start), metav1.NewTime(end)
	ips := func(st corev1.PodStatus) corev1.PodStatus {
		st.HostIP, st.HostIPs, st.StartTime, st.QOSClass = benchHostIP, []corev1.HostIP{{IP: benchHostIP}}, &t0, pod.Status.QOSClass
		return st
	}
	pending := ips(corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
		podCond(corev1.PodReadyToStartContainers, false, "", t0), podCond(corev1.PodInitialized, true, "", t0),
		podCond(corev1.PodReady, false, "ContainersNotReady", t0), podCond(corev1.ContainersReady, false, "ContainersNotReady", t0),
		podCond(corev1.PodScheduled, true, "", t0)},
		ContainerStatuses: containerStatuses(pod, false, func(corev1.Container) corev1.ContainerState {
			return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
		})})
	running := ips(corev1.PodStatus{Phase: corev1.PodRunning, PodIP: podIP(pod.UID), PodIPs: []corev1.PodIP{{IP: podIP(pod.UID)}},
		Conditions: []corev1.PodCondition{podCond(corev1.PodReadyToStartContainers, true, "", t0), podCond(corev1.PodInitialized, true, "", t0),
			podCond(corev1.PodReady, true, "", t0), podCond(corev1.ContainersReady, true, "", t0), podCond(corev1.PodScheduled, true, "", t0)},
		ContainerStatuses: containerStatuses(pod, true, func(corev1.Container) corev1.ContainerState {
			return corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: t0}}
		})})
	return []corev1.PodStatus{pending, running, succeededStatus(pod, t0, t1)}
}

// succeededStatus is a pod's status after all its containers exited 0.
func succeededStatus(pod *corev1.Pod, t0, t1 metav1.Time) corev1.PodStatus {
	return corev1.PodStatus{Phase: corev1.PodSucceeded, HostIP: benchHostIP, HostIPs: []corev1.HostIP{{IP: benchHostIP}},
		PodIP: podIP(pod.UID), PodIPs: []corev1.PodIP{{IP: podIP(pod.UID)}}, StartTime: &t0, QOSClass: pod.Status.QOSClass,
		Conditions: []corev1.PodCondition{podCond(corev1.PodReadyToStartContainers, false, "", t1), podCond(corev1.PodInitialized, true, "PodCompleted", t0),
			podCond(corev1.PodReady, false, "PodCompleted", t1), podCond(corev1.ContainersReady, false, "PodCompleted", t1), podCond(corev1.PodScheduled, true, "", t0)},
		ContainerStatuses: containerStatuses(pod, false, func(corev1.Container) corev1.ContainerState {
			return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: t0, FinishedAt: t1,
				ContainerID: "containerd://" + digest(string(pod.UID))}}
		})}
}

// jobStatuses are the Job controller's status writes for a Job whose one pod runs to
// success: its pod created (active), the pod ready, the pod's end counted as
// uncounted (while it removes the pod's finalizer), the success counted with
// SuccessCriteriaMet, then Complete. finalizerRemoved runs between the third and the
// fourth, as the controller removes the finalizer there.
func jobStatuses(pod types.UID, start, end time.Time) []batchv1.JobStatus {
	t0, t1 := metav1.NewTime(start), metav1.NewTime(end)
	active := batchv1.JobStatus{StartTime: &t0, Active: 1, Ready: ptr.To[int32](0), Terminating: ptr.To[int32](0),
		UncountedTerminatedPods: &batchv1.UncountedTerminatedPods{}}
	ready := *active.DeepCopy()
	ready.Ready = ptr.To[int32](1)
	uncounted := *active.DeepCopy()
	uncounted.Active, uncounted.UncountedTerminatedPods.Succeeded = 0, []types.UID{pod}
	met := *active.DeepCopy()
	met.Active, met.Succeeded = 0, 1
	msg := "Reached expected number of succeeded pods"
	met.Conditions = []batchv1.JobCondition{{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, Reason: "CompletionsReached",
		Message: msg, LastTransitionTime: t1, LastProbeTime: t1}}
	complete := *met.DeepCopy()
	complete.CompletionTime = &t1
	complete.Conditions = append(complete.Conditions, batchv1.JobCondition{Type: batchv1.JobComplete, Status: corev1.ConditionTrue,
		Reason: "CompletionsReached", Message: msg, LastTransitionTime: t1, LastProbeTime: t1})
	return []batchv1.JobStatus{active, ready, uncounted, met, complete}
}
