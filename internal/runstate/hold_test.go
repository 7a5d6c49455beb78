package runstate

import (
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

func TestHoldFor(t *testing.T) {
	job := func(uid string) *batchv1.Job {
		return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "j-" + uid, UID: types.UID(uid)}}
	}
	pod := func(jobUID, node string) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p-" + jobUID, OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "batch/v1", Kind: "Job", Name: "j-" + jobUID, UID: types.UID(jobUID), Controller: ptr.To(true)}}},
			Spec: corev1.PodSpec{NodeName: node}}
	}
	st := func(phases ...v1alpha1.StepPhase) []v1alpha1.StepStatus {
		out := make([]v1alpha1.StepStatus, len(phases))
		for i, p := range phases {
			out[i] = v1alpha1.StepStatus{Phase: p}
		}
		return out
	}
	const (
		pending, running, done, skipped = v1alpha1.StepPending, v1alpha1.StepRunning, v1alpha1.StepSucceeded, v1alpha1.StepSkipped
	)
	for _, c := range []struct {
		name  string
		steps []v1alpha1.StepStatus
		jobs  map[int]*batchv1.Job
		pods  []corev1.Pod
		want  Holding
	}{
		{"nothing started: the clone runs", st(pending, pending), nil, nil, HoldWaiting},
		{"a step's Job has no pod yet", st(running, skipped), map[int]*batchv1.Job{0: job("a")}, nil, HoldBinding},
		{"a step's pod is not bound", st(running, done), map[int]*batchv1.Job{0: job("a")}, []corev1.Pod{pod("a", "")}, HoldBinding},
		{"bound, a later step waits", st(running, pending), map[int]*batchv1.Job{0: job("a")}, []corev1.Pod{pod("a", "node-a")}, HoldWaiting},
		{"every step bound or decided", st(done, running, skipped), map[int]*batchv1.Job{1: job("b")}, []corev1.Pod{pod("b", "node-a")}, HoldNone},
		{"all ended", st(done, done), nil, nil, HoldNone},
		{"a running step whose Job the cache lacks is judged next pass", st(running), nil, nil, HoldNone},
		{"a finally step still to come", append(st(done), v1alpha1.StepStatus{Phase: pending, Finally: true}), nil, nil, HoldWaiting},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := HoldFor(c.steps, c.jobs, c.pods); got != c.want {
				t.Errorf("HoldFor = %v, want %v", got, c.want)
			}
		})
	}
}
