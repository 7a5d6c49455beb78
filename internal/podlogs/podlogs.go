// Package podlogs is the one reader of step logs, for the operator, the CLI and the web
// view: it picks each step's pod the way status derivation does (the newest pod the
// step's Job controls, by UID, so a pod that only carries a step's labels is never
// taken for it), and reads, follows and bounds its log through the pods/log
// subresource. It takes narrow client-go interfaces and holds no state.
package podlogs

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
	typedbatchv1 "k8s.io/client-go/kubernetes/typed/batch/v1"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

// Limits of what a read holds.
const (
	// TailLines is the number of lines a tail keeps.
	TailLines = 80
	// TailBytes bounds a tail in bytes: a tail fits a status message.
	TailBytes = v1alpha1.MaxMessageBytes
	// MaxLineBytes bounds one line of a streamed log; a longer line is cut, with
	// CutMarker after what is kept, so a step that prints megabytes without a newline
	// costs each reader this much.
	MaxLineBytes = 64 << 10
	// CutMarker ends a line that was longer than MaxLineBytes.
	CutMarker = " [flow-ci: line cut at 64 KiB]"
)

// StepContainer is the container of a step's pod whose log is the step's log.
const StepContainer = "step"

// Reader reads pods and their logs with client-go's typed clients.
type Reader struct {
	Pods typedcorev1.PodsGetter
	// Jobs finds each step's Job, for StepPods; the operator's tails need none.
	Jobs typedbatchv1.JobsGetter
}

// TailLog returns the last TailLines lines of the container's log, at most TailBytes;
// previous reads the container's instance before its last restart.
func (r Reader) TailLog(ctx context.Context, namespace, pod, container string, previous bool) (string, error) {
	lines, limit := int64(TailLines), int64(TailBytes)
	opts := &corev1.PodLogOptions{Container: container, TailLines: &lines, LimitBytes: &limit, Previous: previous}
	b, err := r.Pods.Pods(namespace).GetLogs(pod, opts).DoRaw(ctx)
	return string(b), err
}

// runSelector selects the run's step Jobs and pods through the label contract.
func runSelector(run *v1alpha1.PipelineRun) string {
	return labels.SelectorFromSet(labels.Set{v1alpha1.LabelRunUID: string(run.UID), v1alpha1.LabelComponent: v1alpha1.ComponentStep}).String()
}

// StepPods maps each step of run with a Job in its status to that Job's newest pod.
// Jobs and pods are listed by the run's labels, but a Job counts only when the run
// controls it and has the name status gives the step, and a pod only when that Job
// controls it (runstate.LatestPod): anyone who may create pods in the namespace can
// copy the labels, never the owner's UID.
func (r Reader) StepPods(ctx context.Context, run *v1alpha1.PipelineRun) (map[int]*corev1.Pod, error) {
	sel := metav1.ListOptions{LabelSelector: runSelector(run)}
	jobs, err := r.Jobs.Jobs(run.Namespace).List(ctx, sel)
	if err != nil {
		return nil, fmt.Errorf("listing the run's Jobs: %w", err)
	}
	pods, err := r.Pods.Pods(run.Namespace).List(ctx, sel)
	if err != nil {
		return nil, fmt.Errorf("listing the run's pods: %w", err)
	}
	return StepPodsOf(run, jobs.Items, pods.Items), nil
}

// StepPodsOf is StepPods on listed Jobs and pods.
func StepPodsOf(run *v1alpha1.PipelineRun, jobs []batchv1.Job, pods []corev1.Pod) map[int]*corev1.Pod {
	byName := map[string]*batchv1.Job{}
	for i := range jobs {
		j := &jobs[i]
		if ref := metav1.GetControllerOf(j); ref != nil && ref.UID == run.UID {
			byName[j.Name] = j
		}
	}
	out := map[int]*corev1.Pod{}
	for i, st := range run.Status.Steps {
		job := byName[st.JobName]
		if job == nil || job.Labels[v1alpha1.LabelStepIndex] != strconv.Itoa(i) {
			continue
		}
		if p := runstate.LatestPod(pods, job); p != nil {
			out[i] = p
		}
	}
	return out
}

// WatchStepPods watches the pods of run's steps (by its labels; callers pick with
// StepPodsOf), so a follower learns when a step's pod starts without polling.
func (r Reader) WatchStepPods(ctx context.Context, run *v1alpha1.PipelineRun) (watch.Interface, error) {
	return r.Pods.Pods(run.Namespace).Watch(ctx, metav1.ListOptions{LabelSelector: runSelector(run)})
}

// Started reports whether the pod's step container runs or ran, so it has a log.
func Started(p *corev1.Pod) bool { return ContainerStarted(p, StepContainer) }

// ContainerStarted reports whether the pod's container of that name (or init container:
// a step's services) runs or ran.
func ContainerStarted(p *corev1.Pod, name string) bool {
	cs := containerStatus(p, name)
	return cs != nil && (cs.State.Running != nil || cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil)
}

func containerStatus(p *corev1.Pod, name string) *corev1.ContainerStatus {
	if p == nil {
		return nil
	}
	for _, list := range [][]corev1.ContainerStatus{p.Status.ContainerStatuses, p.Status.InitContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// FinishedAt is when the pod's container name terminated; zero while it has not.
func FinishedAt(p *corev1.Pod, name string) time.Time {
	if cs := containerStatus(p, name); cs != nil && cs.State.Terminated != nil {
		return cs.State.Terminated.FinishedAt.Time
	}
	return time.Time{}
}

// Stream reads the step container's log of pod, following it while follow, and calls
// line for each line after the first from lines, with its number from 1. Each line is
// at most MaxLineBytes (cut with CutMarker), so a reader holds a bounded amount
// whatever the step prints. It returns the number of the last line read.
func (r Reader) Stream(ctx context.Context, pod *corev1.Pod, from int, follow bool, line func(n int, text string)) (int, error) {
	rc, err := r.Pods.Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{Container: StepContainer, Follow: follow}).Stream(ctx)
	if err != nil {
		return from, err
	}
	defer func() { _ = rc.Close() }()
	return ScanLines(rc, from, line)
}

// ScanLines splits r into lines of at most MaxLineBytes and calls line for each after
// the first from, numbered from 1. A longer line is cut (CutMarker) and the rest of it,
// up to its newline, skipped. It returns the number of the last line.
func ScanLines(r io.Reader, from int, line func(n int, text string)) (int, error) {
	br := bufio.NewReaderSize(r, MaxLineBytes)
	n := 0
	for {
		chunk, isPrefix, err := br.ReadLine()
		if err == io.EOF {
			return max(n, from), nil
		}
		if err != nil {
			return max(n, from), err
		}
		text := string(chunk)
		if isPrefix {
			text += CutMarker
			for isPrefix && err == nil { // skip the rest of the line
				_, isPrefix, err = br.ReadLine()
			}
		}
		if n++; n > from {
			line(n, text)
		}
		if err == io.EOF {
			return max(n, from), nil
		}
		if err != nil {
			return max(n, from), err
		}
	}
}
