package controllers

import (
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/pipeline"
	"github.com/flow-ci/flow-ci/internal/shorten"
)

// Bounds on what a cached object keeps of the fields its owner or the kubelet writes.
const (
	maxValue    = 253 // a label or annotation value; longer ones are not ours
	maxStatuses = 4
	// maxInitStatuses: a step pod's init containers are the secrets' and artifacts'
	// helper and its services (at most pipeline.MaxServices); the restore of caches is
	// the clone's. One more for slack.
	maxInitStatuses   = pipeline.MaxServices + 2
	maxConditions     = 8
	maxShortMessage   = 256
	maxTerminationMsg = v1alpha1.MaxMessageBytes
)

// keptLabels are the labels the controllers read from cached children: the run-UID
// index, a step Job's index, and the component (the archive names a pod's log by it).
var keptLabels = []string{v1alpha1.LabelRunUID, v1alpha1.LabelStepIndex, v1alpha1.LabelComponent}

// TrimJob keeps of a Job what status derivation reads: its metadata, status and the
// node it is pinned to.
func TrimJob(obj any) (any, error) {
	j, ok := obj.(*batchv1.Job)
	if !ok {
		return obj, nil
	}
	out := &batchv1.Job{ObjectMeta: trimMeta(j.ObjectMeta, "PipelineRun", false)}
	if !controlledBy(j.ObjectMeta, "PipelineRun") {
		return out, nil
	}
	st := j.Status
	out.Status = batchv1.JobStatus{StartTime: st.StartTime, CompletionTime: st.CompletionTime, Active: st.Active, Succeeded: st.Succeeded, Failed: st.Failed}
	// The outcome's condition decides a step's end, and SuccessCriteriaMet, which the
	// Job controller writes before Complete, lets its dependents start early. A failure
	// waits for Failed: FailureTarget comes while the pods are still being stopped.
	for _, c := range firstN(st.Conditions, maxConditions) {
		if c.Status == corev1.ConditionTrue && (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed || c.Type == batchv1.JobSuccessCriteriaMet) {
			limit := maxShortMessage
			if c.Type == batchv1.JobFailed {
				limit = maxTerminationMsg // a failed step's message when its pod left none
			}
			out.Status.Conditions = append(out.Status.Conditions, batchv1.JobCondition{Type: c.Type, Status: c.Status,
				Reason: cut(c.Reason, maxShortMessage), Message: cut(c.Message, limit), LastTransitionTime: c.LastTransitionTime})
		}
	}
	if a := j.Spec.Template.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			for _, f := range term.MatchFields {
				if f.Key == "metadata.name" && len(f.Values) == 1 && len(f.Values[0]) <= maxValue {
					out.Spec.Template.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
						RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
							MatchFields: []corev1.NodeSelectorRequirement{{Key: f.Key, Operator: f.Operator, Values: []string{f.Values[0]}}},
						}}},
					}}
				}
			}
		}
	}
	return out, nil
}

// TrimPod keeps of a pod what status derivation and the watchdogs read: its node, its
// containers' names, phase, conditions and container states.
func TrimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	if controlledBy(p.ObjectMeta, "PipelineRun") {
		// A run's hold (render.RenderHoldPod): whose it is, and whether the scheduler
		// holds its room.
		out := &corev1.Pod{ObjectMeta: trimMeta(p.ObjectMeta, "PipelineRun", false)}
		out.Status.NominatedNodeName = cut(p.Status.NominatedNodeName, maxValue)
		return out, nil
	}
	out := &corev1.Pod{ObjectMeta: trimMeta(p.ObjectMeta, "Job", true)}
	if !controlledBy(p.ObjectMeta, "Job") {
		return out, nil
	}
	out.Spec.NodeName = cut(p.Spec.NodeName, maxValue)
	for _, c := range firstN(p.Spec.Containers, maxStatuses) {
		out.Spec.Containers = append(out.Spec.Containers, corev1.Container{Name: cut(c.Name, maxValue)})
	}
	out.Status.Phase = p.Status.Phase
	for _, c := range p.Status.Conditions {
		// The watchdogs' conditions: scheduled, and ready (marked false on a lost node).
		// Initialized: when a step's init containers (its services among them) were done.
		if c.Type == corev1.PodScheduled || c.Type == corev1.PodReady || c.Type == corev1.PodInitialized {
			c.Message, c.LastProbeTime = cut(c.Message, maxShortMessage), metav1.Time{}
			out.Status.Conditions = append(out.Status.Conditions, c)
		}
	}
	out.Status.ContainerStatuses = trimStatuses(p.Status.ContainerStatuses, maxStatuses)
	out.Status.InitContainerStatuses = trimStatuses(p.Status.InitContainerStatuses, maxInitStatuses)
	return out, nil
}

// TrimPVC keeps a PVC's metadata: the controllers only check that it exists, whose it
// is and whether it is being deleted.
func TrimPVC(obj any) (any, error) {
	pvc, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok {
		return obj, nil
	}
	return &corev1.PersistentVolumeClaim{ObjectMeta: trimMeta(pvc.ObjectMeta, "PipelineRun", false)}, nil
}

func trimStatuses(in []corev1.ContainerStatus, most int) []corev1.ContainerStatus {
	var out []corev1.ContainerStatus
	for i, cs := range firstN(in, most) {
		// Started and the restarts tell a service that never got ready (runstate.ServiceNotReady).
		kept := corev1.ContainerStatus{Name: cut(cs.Name, maxValue), RestartCount: cs.RestartCount, Started: cs.Started}
		if t := cs.LastTerminationState.Terminated; t != nil {
			kept.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: t.ExitCode}
		}
		if w := cs.State.Waiting; w != nil {
			// The image only matters to a watchdog's message about a waiting container.
			kept.Image = cut(cs.Image, maxValue)
			kept.State.Waiting = &corev1.ContainerStateWaiting{Reason: cut(w.Reason, maxShortMessage), Message: cut(w.Message, maxShortMessage)}
		}
		// StartedAt feeds flowci_step_pod_start_seconds.
		if r := cs.State.Running; r != nil {
			kept.State.Running = &corev1.ContainerStateRunning{StartedAt: r.StartedAt}
		}
		if t := cs.State.Terminated; t != nil {
			limit := maxShortMessage
			if i == 0 {
				limit = maxTerminationMsg // a step's log tail
			}
			kept.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: t.ExitCode, Message: cutTail(t.Message, limit),
				StartedAt: t.StartedAt, FinishedAt: t.FinishedAt} // FinishedAt: the archive's standby stops reading a log a window after it
		}
		out = append(out, kept)
	}
	return out
}

// trimMeta keeps name, identity, times, the controlling owner and, for objects with
// such an owner of kind ownerKind, the flow-ci and Job labels (and the run-name
// annotation on pods). Values longer than any the operator writes are dropped.
func trimMeta(m metav1.ObjectMeta, ownerKind string, podAnnotation bool) metav1.ObjectMeta {
	out := metav1.ObjectMeta{
		Name: cut(m.Name, maxValue), Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		Generation: m.Generation, CreationTimestamp: m.CreationTimestamp, DeletionTimestamp: m.DeletionTimestamp,
	}
	ref := metav1.GetControllerOf(&m)
	if ref == nil || ref.Kind != ownerKind || len(ref.Name) > maxValue {
		return out
	}
	r := *ref
	r.BlockOwnerDeletion = nil
	out.OwnerReferences = []metav1.OwnerReference{r}
	for _, k := range keptLabels {
		if v, ok := m.Labels[k]; ok && len(v) <= maxValue {
			if out.Labels == nil {
				out.Labels = map[string]string{}
			}
			out.Labels[k] = v
		}
	}
	if v, ok := m.Annotations[v1alpha1.AnnotationRunName]; podAnnotation && ok && len(v) <= maxValue {
		out.Annotations = map[string]string{v1alpha1.AnnotationRunName: v}
	}
	return out
}

func controlledBy(m metav1.ObjectMeta, kind string) bool {
	ref := metav1.GetControllerOf(&m)
	return ref != nil && ref.Kind == kind
}

func firstN[T any](s []T, n int) []T {
	if len(s) > n {
		s = s[:n]
	}
	return append([]T(nil), s...)
}

// cut keeps the first n bytes of s, without a broken UTF-8 sequence.
func cut(s string, n int) string {
	if len(s) > n {
		return strings.ToValidUTF8(s[:n], "")
	}
	return s
}

// cutTail keeps the end of a log tail.
func cutTail(s string, n int) string { return shorten.Tail(s, n) }

// TrimNode keeps of a Node its name and its Ready condition, which the node-lost
// watchdog reads; a Node's images and addresses are most of its bytes.
func TrimNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	out := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, UID: n.UID, ResourceVersion: n.ResourceVersion}}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			c.Message, c.LastHeartbeatTime = cut(c.Message, maxShortMessage), metav1.Time{}
			out.Status.Conditions = append(out.Status.Conditions, c)
		}
	}
	return out, nil
}
