package pipelinerun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/flow-ci/flow-ci/internal/render"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

// Bounds on reading the pods of an ended Job. A step Job retries at most a few times,
// but anyone who may create pods in the run's namespace can add pods carrying its
// labels, each up to the API server's object size: the read stops at a byte budget, so
// such pods cost the operator a bounded read, and at worst the step's exit code and
// tail.
const maxEndedPodsBytes = 1 << 20

var errEndedPodsTooLarge = errors.New("the Job's pods exceed the read budget")

// endedPods reads from the API server the pods of the Jobs that failed since the run's
// status was last written, and adds them to the pass's pods: the cache holds only
// unfinished pods, and a failed step's end records its container's exit code and log
// tail (the clone's, its failure message), and of those that succeeded for steps that
// keep artifacts (endNeedsPods). Another Job that succeeded needs no read: its pod
// succeeded, so its container exited 0 (runstate.DeriveStep), and the clone's node,
// where the steps are pinned, was seen as its pod left the cache (cloneNodes); only
// when that was not seen (a restart, an event still on its way) are the clone's pods
// read. Each is read once: the next pass finds the step ended in status, or the steps
// started. A read over budget leaves the step without its exit code; its outcome comes
// from its Job.
func (r *Reconciler) endedPods(ctx context.Context, s *scope) error {
	var ended []*batchv1.Job
	for i, j := range s.stepJobs {
		if i < len(s.run.Status.Steps) && !runstate.IsTerminal(s.run.Status.Steps[i].Phase) && endNeedsPods(s, i, j) {
			ended = append(ended, j)
		}
	}
	if c := s.cloneJob; c != nil && len(s.stepJobs) == 0 && cloneEndNeedsPods(s) {
		ended = append(ended, c)
	}
	for _, job := range ended {
		pods, err := r.podsOf(ctx, job, "0")
		if err == nil && !anyEnded(pods) {
			pods, err = r.podsOf(ctx, job, "")
		}
		if errors.Is(err, errEndedPodsTooLarge) {
			log.FromContext(ctx).Info("not reading the pods of an ended Job", "job", job.Name, "reason", err.Error())
			continue
		}
		if err != nil {
			return err
		}
		s.pods = append(s.pods, pods...)
	}
	return nil
}

// endNeedsPods: a step's end is read from its pod when its Job failed (the exit code
// and log tail), or when it keeps artifacts (its wrapper's report, in the termination
// message).
func endNeedsPods(s *scope, i int, j *batchv1.Job) bool {
	switch runstate.JobOutcome(j) {
	case batchv1.JobFailed:
		return true
	case batchv1.JobComplete:
		return s.def != nil && i < len(s.def.Pipeline.Steps)+len(s.def.Pipeline.Finally) &&
			(s.def.Pipeline.Step(i).Artifacts != nil || s.def.Pipeline.Step(i).SavesCaches)
	}
	return false
}

// podsOf lists the pods that carry job's controller-uid label, streaming the response
// through the byte budget. At resourceVersion "0" the API server answers from its watch
// cache, which nearly always holds the pods' ends already (the Job controller saw them
// before it wrote the Job's outcome); endedPods falls back to "" (a consistent read) only
// when it does not. A consistent list, or one with a limit, goes to etcd unless etcd
// answers progress requests (3.4.31, 3.5.13), and there it scans every pod of the
// namespace: measured at twice the API server's CPU per handoff with 1,500 pods in it.
func (r *Reconciler) podsOf(ctx context.Context, job *batchv1.Job, version string) ([]corev1.Pod, error) {
	opts := &metav1.ListOptions{LabelSelector: batchv1.ControllerUidLabel + "=" + string(job.UID), ResourceVersion: version}
	body, err := r.PodsAPI.Get().Namespace(job.Namespace).Resource("pods").
		VersionedParams(opts, scheme.ParameterCodec).SetHeader("Accept", "application/json").Stream(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the pods of Job %s: %w", job.Name, err)
	}
	defer body.Close()
	budget := &io.LimitedReader{R: body, N: maxEndedPodsBytes + 1}
	list := &corev1.PodList{}
	err = json.NewDecoder(budget).Decode(list)
	if budget.N <= 0 {
		return nil, fmt.Errorf("%w (%d bytes)", errEndedPodsTooLarge, maxEndedPodsBytes)
	}
	if err != nil {
		return nil, fmt.Errorf("decoding the pods of Job %s: %w", job.Name, err)
	}
	return list.Items, nil
}

// cloneEndNeedsPods reports whether the clone Job ended in a way only its pods explain:
// a failure (its message), or a success whose node the steps need and cloneNodes did
// not see.
func cloneEndNeedsPods(s *scope) bool {
	switch runstate.JobOutcome(s.cloneJob) {
	case batchv1.JobFailed:
		return true
	case batchv1.JobComplete:
		// Its node, unless seen as the pod left the cache; what it restored of the caches.
		return render.NeedsOneNode(s.run) && s.cloneNode == "" ||
			s.def != nil && len(s.def.Pipeline.Caches) > 0 && len(s.run.Status.Caches) == 0
	}
	return false
}

// anyEnded reports whether one of pods has ended: what a list of an ended Job's pods
// holds unless it is stale.
func anyEnded(pods []corev1.Pod) bool {
	for i := range pods {
		if p := pods[i].Status.Phase; p == corev1.PodSucceeded || p == corev1.PodFailed {
			return true
		}
	}
	return false
}
