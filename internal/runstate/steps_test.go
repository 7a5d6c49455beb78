package runstate

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/shorten"
)

var (
	t0 = metav1.NewTime(time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC))
	t1 = metav1.NewTime(t0.Add(time.Minute))
	t2 = metav1.NewTime(t0.Add(2 * time.Minute))
)

func job(conds ...batchv1.JobCondition) *batchv1.Job {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "r-0-test", UID: "job-uid", CreationTimestamp: t0}}
	j.Status.StartTime = &t0
	j.Status.Conditions = conds
	return j
}

func cond(t batchv1.JobConditionType, reason string) batchv1.JobCondition {
	return batchv1.JobCondition{Type: t, Status: corev1.ConditionTrue, Reason: reason, Message: "job says " + reason, LastTransitionTime: t1}
}

// podOf is a pod controlled by the Job with UID owner, labelled for the Job r-0-test.
func podOf(owner types.UID, created metav1.Time, exit int32, msg string) corev1.Pod {
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: string(owner) + created.Format("150405"), CreationTimestamp: created,
			Labels:          map[string]string{batchv1.JobNameLabel: "r-0-test"},
			OwnerReferences: []metav1.OwnerReference{{Kind: "Job", Name: "r-0-test", UID: owner, Controller: ptr.To(true)}}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: exit, Message: msg}},
		}}},
	}
}

func TestDeriveStep(t *testing.T) {
	pending := v1alpha1.StepStatus{Name: "test", Index: 0, Phase: v1alpha1.StepPending}
	cases := []struct {
		name string
		prev v1alpha1.StepStatus
		job  *batchv1.Job
		pods []corev1.Pod
		want v1alpha1.StepStatus
	}{
		{"no job yet", pending, nil, nil, pending},
		{"active job", pending, job(), nil,
			v1alpha1.StepStatus{Name: "test", Phase: v1alpha1.StepRunning, JobName: "r-0-test", StartTime: &t0, Attempts: 1}},
		{"success criteria met ends the step before Complete", pending, func() *batchv1.Job {
			j := job(cond(batchv1.JobSuccessCriteriaMet, "CompletionsReached"))
			j.Status.Succeeded = 1
			return j
		}(), []corev1.Pod{podOf("job-uid", t0, 0, "")},
			v1alpha1.StepStatus{Name: "test", Phase: v1alpha1.StepSucceeded, JobName: "r-0-test", StartTime: &t0, CompletionTime: &t1,
				ExitCode: ptr.To[int32](0), Attempts: 1}},
		{"a success whose pod is not at hand exited 0: a pod succeeds only when its containers do", pending, func() *batchv1.Job {
			j := job(cond(batchv1.JobSuccessCriteriaMet, "CompletionsReached"))
			j.Status.Succeeded = 1
			return j
		}(), nil,
			v1alpha1.StepStatus{Name: "test", Phase: v1alpha1.StepSucceeded, JobName: "r-0-test", StartTime: &t0, CompletionTime: &t1,
				ExitCode: ptr.To[int32](0), Attempts: 1}},
		{"a retried success ends before its pod is counted: the failed ones and it (seen on a cluster)", pending, func() *batchv1.Job {
			j := job(cond(batchv1.JobSuccessCriteriaMet, "CompletionsReached"))
			j.Status.Failed = 1 // the succeeded pod is still among the uncounted
			return j
		}(), nil,
			v1alpha1.StepStatus{Name: "test", Phase: v1alpha1.StepSucceeded, JobName: "r-0-test", StartTime: &t0, CompletionTime: &t1,
				ExitCode: ptr.To[int32](0), Attempts: 2, Flaky: true}},
		{"a failure target is not terminal: the pods may still run", pending, job(cond(batchv1.JobFailureTarget, "")), nil,
			v1alpha1.StepStatus{Name: "test", Phase: v1alpha1.StepRunning, JobName: "r-0-test", StartTime: &t0, Attempts: 1}},
		{"a retry alone does not change the attempts: they come with the outcome",
			v1alpha1.StepStatus{Name: "test", Phase: v1alpha1.StepRunning, JobName: "r-0-test", StartTime: &t0, Attempts: 1},
			func() *batchv1.Job { j := job(); j.Status.Active, j.Status.Failed = 1, 1; return j }(), nil,
			v1alpha1.StepStatus{Name: "test", Phase: v1alpha1.StepRunning, JobName: "r-0-test", StartTime: &t0, Attempts: 1}},
		{"the attempts of a retried step, at its end", v1alpha1.StepStatus{Name: "test", Phase: v1alpha1.StepRunning, JobName: "r-0-test", StartTime: &t0, Attempts: 1},
			func() *batchv1.Job {
				j := job(cond(batchv1.JobFailed, "BackoffLimitExceeded"))
				j.Status.Failed = 3
				return j
			}(), nil,
			v1alpha1.StepStatus{Name: "test", Phase: v1alpha1.StepFailed, JobName: "r-0-test", StartTime: &t0, CompletionTime: &t1, Attempts: 3,
				Reason: v1alpha1.ReasonStepFailed, Message: "job says BackoffLimitExceeded"}},
		{"complete", pending, func() *batchv1.Job {
			j := job(cond(batchv1.JobComplete, "CompletionsReached"))
			j.Status.CompletionTime = &t2
			return j
		}(), []corev1.Pod{podOf("job-uid", t0, 0, "")},
			v1alpha1.StepStatus{Name: "test", Phase: v1alpha1.StepSucceeded, JobName: "r-0-test", StartTime: &t0, CompletionTime: &t2, ExitCode: ptr.To[int32](0), Attempts: 1}},
		{"failed uses the newest pod's exit code and log tail", pending, job(cond(batchv1.JobFailed, "BackoffLimitExceeded")),
			[]corev1.Pod{podOf("job-uid", t1, 3, "newest"), podOf("job-uid", t0, 1, "older"), podOf("forged", t2, 9, "not ours")},
			v1alpha1.StepStatus{Name: "test", Phase: v1alpha1.StepFailed, JobName: "r-0-test", StartTime: &t0, CompletionTime: &t1,
				ExitCode: ptr.To[int32](3), Reason: v1alpha1.ReasonStepFailed, Message: "newest", Attempts: 1}},
		{"a forged pod with the Job's labels is not the Job's", pending, job(cond(batchv1.JobFailed, "BackoffLimitExceeded")),
			[]corev1.Pod{podOf("forged", t2, 9, "forged tail")},
			v1alpha1.StepStatus{Name: "test", Phase: v1alpha1.StepFailed, JobName: "r-0-test", StartTime: &t0, CompletionTime: &t1,
				Reason: v1alpha1.ReasonStepFailed, Message: "job says BackoffLimitExceeded", Attempts: 1}},
		{"failed without a pod keeps the Job's message", pending, job(cond(batchv1.JobFailed, "BackoffLimitExceeded")), nil,
			v1alpha1.StepStatus{Name: "test", Phase: v1alpha1.StepFailed, JobName: "r-0-test", StartTime: &t0, CompletionTime: &t1,
				Reason: v1alpha1.ReasonStepFailed, Message: "job says BackoffLimitExceeded", Attempts: 1}},
		{"deadline exceeded is a step timeout", pending, job(cond(batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded)), nil,
			v1alpha1.StepStatus{Name: "test", Phase: v1alpha1.StepFailed, JobName: "r-0-test", StartTime: &t0, CompletionTime: &t1,
				Reason: v1alpha1.ReasonStepTimedOut, Message: "job says DeadlineExceeded", Attempts: 1}},
		{"terminal state is kept", v1alpha1.StepStatus{Name: "test", Phase: v1alpha1.StepSucceeded, JobName: "r-0-test"},
			job(cond(batchv1.JobFailed, "BackoffLimitExceeded")), nil,
			v1alpha1.StepStatus{Name: "test", Phase: v1alpha1.StepSucceeded, JobName: "r-0-test"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := DeriveStep(tc.prev, tc.job, tc.pods)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("DeriveStep (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTruncateKeepsTheTail(t *testing.T) {
	cases := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"0123456789abcdef", 10, "…9abcdef"},
		{strings.Repeat("é", 10), 9, "…ééé"},
		{strings.Repeat("é", 10), 8, "…éé"}, // never splits a UTF-8 sequence
	}
	for _, tc := range cases {
		got := shorten.Tail(tc.in, tc.n)
		if got != tc.want || len(got) > tc.n {
			t.Errorf("shorten.Tail(%q, %d) = %q (%d bytes), want %q", tc.in, tc.n, got, len(got), tc.want)
		}
	}
}

func TestEndStep(t *testing.T) {
	at := metav1.NewTime(time.Unix(1e9, 0))
	code := func(c int32) *int32 { return &c }
	long := strings.Repeat("x", v1alpha1.MaxMessageBytes+10)
	for _, tc := range []struct {
		name string
		prev v1alpha1.StepStatus
		end  StepEnd
		want v1alpha1.StepStatus
	}{
		{"succeeded on a retry: flaky", v1alpha1.StepStatus{Phase: v1alpha1.StepRunning, Attempts: 1, Message: "old"}, StepEnd{ExitCode: code(0), Attempts: 2},
			v1alpha1.StepStatus{Phase: v1alpha1.StepSucceeded, Attempts: 2, ExitCode: code(0), CompletionTime: &at, Flaky: true}},
		{"failed, tail bounded", v1alpha1.StepStatus{Phase: v1alpha1.StepRunning, Attempts: 1}, StepEnd{ExitCode: code(3), Reason: v1alpha1.ReasonStepFailed, Tail: long},
			v1alpha1.StepStatus{Phase: v1alpha1.StepFailed, Attempts: 1, ExitCode: code(3), Reason: v1alpha1.ReasonStepFailed,
				Message: shorten.Tail(long, v1alpha1.MaxMessageBytes), CompletionTime: &at}},
		{"timed out without an exit code", v1alpha1.StepStatus{Phase: v1alpha1.StepRunning}, StepEnd{Reason: v1alpha1.ReasonStepTimedOut},
			v1alpha1.StepStatus{Phase: v1alpha1.StepFailed, Reason: v1alpha1.ReasonStepTimedOut, CompletionTime: &at}},
		{"an ended step keeps its end", v1alpha1.StepStatus{Phase: v1alpha1.StepCancelled, Reason: v1alpha1.ReasonFailFast}, StepEnd{ExitCode: code(0)},
			v1alpha1.StepStatus{Phase: v1alpha1.StepCancelled, Reason: v1alpha1.ReasonFailFast}},
	} {
		s := tc.prev
		EndStep(&s, tc.end, at)
		if d := cmp.Diff(tc.want, s); d != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, d)
		}
	}
	s := v1alpha1.StepStatus{Phase: v1alpha1.StepPending}
	StartStep(&s, at)
	if s.Phase != v1alpha1.StepRunning || s.Attempts != 1 || !s.StartTime.Equal(&at) {
		t.Errorf("StartStep: %+v", s)
	}
}
