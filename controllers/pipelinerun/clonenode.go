package pipelinerun

import (
	"context"
	"sync"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers"
	"github.com/flow-ci/flow-ci/internal/render"
)

// cloneNodes remembers, by run UID, the node the run's clone pod ran on, learned when
// the pod leaves the cache (it finished, or went away): the cache holds only unfinished
// pods, and a finished pod's delete event carries its last cached state, which names
// its node. The pass that starts the first steps pins them there without reading the
// clone's pods from the API server. After a restart, or when the event comes after
// the Job's outcome, the pass reads them (endedPods): the entry saves a request, it is
// never the only way to the node.
type cloneNodes struct {
	mu    sync.Mutex
	byRun map[types.UID]cloneNode
}

type cloneNode struct {
	job  types.UID // the clone Job the pod belonged to
	node string
}

// record notes the node of a clone pod that left the cache because it finished: one
// deleted before (an attempt the Job replaced, a pod evicted) is not where the
// workspace was written. job is the Job that controls the pod (controllingJob: by name
// and UID, as the cache holds it), and only its run's clone Job counts, so a pod that
// merely carries a clone pod's labels adds no entry; entries are bounded by the runs
// that exist, and each goes with its run (forget).
func (c *cloneNodes) record(pod *corev1.Pod, job *batchv1.Job) {
	run := types.UID(pod.Labels[v1alpha1.LabelRunUID])
	name := pod.Annotations[v1alpha1.AnnotationRunName]
	if pod.Spec.NodeName == "" || !pod.DeletionTimestamp.IsZero() || run == "" || name == "" ||
		job.Name != render.CloneJobName(&v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: name}}) {
		return
	}
	if owner := metav1.GetControllerOf(job); owner == nil || owner.UID != run || owner.Name != name {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byRun == nil {
		c.byRun = map[types.UID]cloneNode{}
	}
	c.byRun[run] = cloneNode{job: job.UID, node: pod.Spec.NodeName}
}

// node returns the node the clone Job job of run ran on, if its pod's end was seen.
func (c *cloneNodes) node(run types.UID, job *batchv1.Job) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byRun[run]; ok && job != nil && e.job == job.UID {
		return e.node
	}
	return ""
}

func (c *cloneNodes) forget(run types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.byRun, run)
}

// podLeft notes a pod that left the cache, as it finished or went away. Its event
// carries its last cached state: the node a clone pod ran on (cloneNodes), and when a
// step pod's container started, for flowci_step_pod_start_seconds. A pod whose
// container was never seen running (one that ended within the kubelet's first status
// report) gives no sample.
func (r *Reconciler) podLeft(ctx context.Context, pod *corev1.Pod) {
	job := controllers.ControllingJob(ctx, pod, r.Client)
	if job == nil {
		return
	}
	r.clones.record(pod, job)
	r.recordPodTimes(ctx, pod, job)
	if pod.Labels[v1alpha1.LabelStepIndex] == "" || len(pod.Status.ContainerStatuses) == 0 {
		return
	}
	if started := pod.Status.ContainerStatuses[0].State.Running; started != nil {
		r.Metrics.StepPodStarted(pod.Namespace, job.CreationTimestamp.Time, started.StartedAt.Time)
	}
}
