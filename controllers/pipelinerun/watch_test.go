package pipelinerun

import (
	"context"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

func ownedJob(conds ...batchv1.JobConditionType) *batchv1.Job {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "r-0-a", OwnerReferences: []metav1.OwnerReference{{
		APIVersion: v1alpha1.GroupVersion.String(), Kind: "PipelineRun", Name: "r", Controller: ptr.To(true)}}}}
	for _, c := range conds {
		j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{Type: c, Status: corev1.ConditionTrue})
	}
	return j
}

func pendingPod(waiting string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", Annotations: map[string]string{v1alpha1.AnnotationRunName: "r"}},
		Status: corev1.PodStatus{Phase: corev1.PodPending}}
	if waiting != "" {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: waiting}}}}
	}
	return p
}

// TestChildEventsThatReconcile: only what can move a run reconciles it.
func TestChildEventsThatReconcile(t *testing.T) {
	failed := ownedJob()
	failed.Status.Failed = 1
	running := pendingPod("")
	running.Status.Phase = corev1.PodRunning
	runningLater := running.DeepCopy()
	runningLater.Status.ContainerStatuses = []corev1.ContainerStatus{{Ready: true}}
	active := ownedJob()
	active.Status.Active = 1
	creating := pendingPod("ContainerCreating")
	creating.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}
	unschedulable := pendingPod("")
	unschedulable.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable"}}
	cases := []struct {
		name     string
		old, new any
		want     int
	}{
		{"a Job meets its success criteria", ownedJob(), ownedJob(batchv1.JobSuccessCriteriaMet), 1},
		{"a Job completes after its success criteria", ownedJob(batchv1.JobSuccessCriteriaMet), ownedJob(batchv1.JobSuccessCriteriaMet, batchv1.JobComplete), 0},
		{"a Job completes at once", ownedJob(), ownedJob(batchv1.JobSuccessCriteriaMet, batchv1.JobComplete), 1},
		{"a Job fails", ownedJob(), ownedJob(batchv1.JobFailed), 1},
		{"a Job's failure target", ownedJob(), ownedJob(batchv1.JobFailureTarget), 0},
		{"a pod of a Job failed (a retry)", ownedJob(), failed, 0},
		{"a Job's pod starts (active)", ownedJob(), active, 0},
		{"a pod is scheduled and creating its containers", pendingPod(""), creating, 0},
		{"a pod starts waiting on its image", creating, pendingPod("ErrImagePull"), 1},
		{"a pod's image wait changes reason", pendingPod("ErrImagePull"), pendingPod("ImagePullBackOff"), 1},
		{"a waiting pod stays the same", pendingPod("ErrImagePull"), pendingPod("ErrImagePull"), 0},
		{"a pod the scheduler refuses", pendingPod(""), unschedulable, 1},
		{"a running pod reports progress", running, runningLater, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
			defer q.ShutDown()
			switch o := tc.old.(type) {
			case *batchv1.Job:
				jobEvents().Update(context.Background(), event.UpdateEvent{ObjectOld: o, ObjectNew: tc.new.(*batchv1.Job)}, q)
			case *corev1.Pod:
				(&Reconciler{}).podEvents().Update(context.Background(), event.UpdateEvent{ObjectOld: o, ObjectNew: tc.new.(*corev1.Pod)}, q)
			}
			if q.Len() != tc.want {
				t.Errorf("%d reconciles queued, want %d", q.Len(), tc.want)
			}
		})
	}
}
