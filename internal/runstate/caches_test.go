package runstate

import (
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// The clone's and the saving step's reports reach status merged by name, and bounded to
// what the schema holds whatever they say.
func TestRecordCaches(t *testing.T) {
	job := func(uid string) *batchv1.Job {
		return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{UID: k8stypes.UID("j" + uid)}, Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}}}
	}
	pod := func(jobUID, msg string) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p" + jobUID, OwnerReferences: []metav1.OwnerReference{{Kind: "Job", UID: k8stypes.UID("j" + jobUID), Controller: new(true)}}},
			Status: corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{
				Terminated: &corev1.ContainerStateTerminated{Message: msg}}}}}}
	}
	long := strings.Repeat("x", 900)
	clone := "checked out\n" + v1alpha1.CachesReportPrefix + `[{"name":"go","key":"go-1","restoredKey":"go-0","restoredFrom":"main","restoredBytes":9},{"name":"web","key":"web-1","message":"` + long + `"}]`
	save := v1alpha1.CachesReportPrefix + `[{"name":"go","key":"go-1","saved":true,"savedBytes":7}]`
	run := &v1alpha1.PipelineRun{}
	RecordCaches(run, job("c"), job("s"), []corev1.Pod{pod("c", clone), pod("s", save)})
	got := run.Status.Caches
	if len(got) != 2 || got[0].RestoredKey != "go-0" || !got[0].Saved || got[0].SavedBytes != 7 || got[1].Saved {
		t.Fatalf("caches %+v", got)
	}
	if len(got[1].Message) > 512 {
		t.Errorf("a message of %d bytes reached status: every later patch would be refused", len(got[1].Message))
	}
	RecordCaches(run, job("c"), nil, []corev1.Pod{pod("c", v1alpha1.CachesReportPrefix+"not json")})
	if len(run.Status.Caches) != 2 {
		t.Errorf("a recorded restore was replaced: %+v", run.Status.Caches)
	}
}
