package podlogs

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

func TestScanLines(t *testing.T) {
	long := strings.Repeat("x", MaxLineBytes+10)
	for _, tc := range []struct {
		name string
		in   string
		from int
		want []string
		last int
	}{
		{"lines", "a\nb\nc\n", 0, []string{"1:a", "2:b", "3:c"}, 3},
		{"no newline at the end", "a\nb", 0, []string{"1:a", "2:b"}, 2},
		{"resume after line 2", "a\nb\nc\n", 2, []string{"3:c"}, 3},
		{"resume past the end", "a\n", 5, nil, 5},
		{"carriage returns", "a\r\nb\r\n", 0, []string{"1:a", "2:b"}, 2},
		{"a line too long is cut", "a\n" + long + "\nb\n", 0, []string{"1:a", "2:" + long[:MaxLineBytes] + CutMarker, "3:b"}, 3},
		{"a long last line", long, 0, []string{"1:" + long[:MaxLineBytes] + CutMarker}, 1},
		{"bytes that are not UTF-8 pass", "\xff\xfe\n", 0, []string{"1:\xff\xfe"}, 1},
		{"empty", "", 0, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			last, err := ScanLines(strings.NewReader(tc.in), tc.from, func(n int, text string) {
				got = append(got, strconv.Itoa(n)+":"+text)
			})
			if err != nil || last != tc.last {
				t.Errorf("last = %d, %v; want %d", last, err, tc.last)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("lines (-want +got):\n%s", d)
			}
		})
	}
}

// A step's pod is the newest pod its Job controls; a pod or Job that only carries the
// run's labels is never taken for it.
func TestStepPodsOf(t *testing.T) {
	run := &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "r", UID: "run-uid"}}
	run.Status.Steps = []v1alpha1.StepStatus{{Name: "a", JobName: "r-0-a"}, {Name: "b", JobName: "r-1-b"}, {Name: "c", JobName: "r-2-c"}, {Name: "d"}}
	job := func(name, idx string, owner types.UID) batchv1.Job {
		return batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(name + "-uid"),
			Labels:          map[string]string{v1alpha1.LabelStepIndex: idx},
			OwnerReferences: []metav1.OwnerReference{{Kind: "PipelineRun", UID: owner, Controller: new(true)}}}}
	}
	pod := func(name string, job types.UID, age time.Duration) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(time.Unix(1e9, 0).Add(-age)),
			OwnerReferences: []metav1.OwnerReference{{Kind: "Job", UID: job, Controller: new(true)}}}}
	}
	jobs := []batchv1.Job{
		job("r-0-a", "0", "run-uid"),
		job("r-1-b", "1", "someone-else"), // labelled like the run's, not controlled by it
		job("r-2-c", "0", "run-uid"),      // its index label is not the step's
	}
	pods := []corev1.Pod{
		pod("a-first", "r-0-a-uid", time.Minute),
		pod("a-retry", "r-0-a-uid", time.Second),
		pod("a-forged", "forged-uid", 0), // newest, with the labels, owned by no Job of the run
		pod("b-pod", "r-1-b-uid", 0),
		pod("c-pod", "r-2-c-uid", 0),
	}
	got := map[int]string{}
	for i, p := range StepPodsOf(run, jobs, pods) {
		got[i] = p.Name
	}
	if d := cmp.Diff(map[int]string{0: "a-retry"}, got); d != "" {
		t.Errorf("step pods (-want +got):\n%s", d)
	}
}

func TestStarted(t *testing.T) {
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want bool
	}{
		{"no pod", nil, false},
		{"waiting", &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: StepContainer}}}}, false},
		{"running", &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: StepContainer, State: running}}}}, true},
		{"a sidecar runs", &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "db", State: running}}}}, false},
	} {
		if got := Started(tc.pod); got != tc.want {
			t.Errorf("%s: Started = %v", tc.name, got)
		}
	}
}

func TestFinishedAt(t *testing.T) {
	end := metav1.NewTime(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
	done := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{FinishedAt: end}}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want time.Time
	}{
		{"no pod", nil, time.Time{}},
		{"running", &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: StepContainer, State: running}}}}, time.Time{}},
		{"terminated", &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: StepContainer, State: done}}}}, end.Time},
		{"another container terminated", &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "db", State: done}, {Name: StepContainer, State: running}}}}, time.Time{}},
	} {
		if got := FinishedAt(tc.pod, StepContainer); !got.Equal(tc.want) {
			t.Errorf("%s: FinishedAt = %v, want %v", tc.name, got, tc.want)
		}
	}
}
