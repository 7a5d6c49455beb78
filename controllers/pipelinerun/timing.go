package pipelinerun

import (
	"context"
	"sync"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

// podTimes remembers, by run UID then Job UID, the times of a step's last pod as it
// left the cache (it finished): a succeeded pod is not read back, and its last cached
// state is the only place its phases are seen without a request. After a restart the
// step's timing has only what its Job and status give (runstate.StepTimingOf). Entries
// are bounded by the active runs (recordPodTimes) and their steps' Jobs, and go with
// their run.
type podTimes struct {
	mu    sync.Mutex
	byRun map[types.UID]map[types.UID]runstate.PodTimes
}

func (m *podTimes) record(pod *corev1.Pod, job *batchv1.Job) {
	run := types.UID(pod.Labels[v1alpha1.LabelRunUID])
	if run == "" || pod.Labels[v1alpha1.LabelStepIndex] == "" {
		return
	}
	if owner := metav1.GetControllerOf(job); owner == nil || owner.UID != run {
		return
	}
	pt := runstate.PodTimesOf(pod)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byRun == nil {
		m.byRun = map[types.UID]map[types.UID]runstate.PodTimes{}
	}
	jobs := m.byRun[run]
	if jobs == nil {
		jobs = map[types.UID]runstate.PodTimes{}
		m.byRun[run] = jobs
	}
	if prev, ok := jobs[job.UID]; ok && prev.Created.After(pt.Created) {
		return // an earlier attempt's pod left after the last one's
	}
	jobs[job.UID] = pt
}

func (m *podTimes) get(run types.UID, job *batchv1.Job) runstate.PodTimes {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.byRun[run][job.UID]
}

func (m *podTimes) forget(run types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.byRun, run)
}

// recordPodTimes remembers a step pod's times only while its run is in the cache and
// active: a pod that leaves as its run ends or goes (forget) adds no entry back.
func (r *Reconciler) recordPodTimes(ctx context.Context, pod *corev1.Pod, job *batchv1.Job) {
	name := pod.Annotations[v1alpha1.AnnotationRunName]
	run := &v1alpha1.PipelineRun{}
	if name == "" || r.Client.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: name}, run) != nil ||
		string(run.UID) != pod.Labels[v1alpha1.LabelRunUID] || run.Status.Phase.IsFinished() {
		return
	}
	r.times.record(pod, job)
}

// recordTimings completes the timing of each step that ended in this pass (of those
// active at its start): its last pod's times from the pass's pods (one still pending, a
// failed pod read back), else as the pod left the cache.
func (r *Reconciler) recordTimings(s *scope, wasActive []int) {
	for _, i := range wasActive {
		st := &s.run.Status.Steps[i]
		job := s.stepJobs[i]
		if job == nil || !runstate.IsTerminal(st.Phase) {
			continue
		}
		pt := runstate.PodTimesOf(runstate.LatestPod(s.pods, job))
		if pt.Created.IsZero() {
			pt = r.times.get(s.run.UID, job)
		}
		var ready *metav1.Time
		if st.Timing != nil {
			ready = st.Timing.ReadyTime
		}
		st.Timing = runstate.StepTimingOf(ready, job, pt)
	}
}
