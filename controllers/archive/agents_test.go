package archive

import (
	"errors"
	"maps"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/archive/api"
	"github.com/flow-ci/flow-ci/internal/pipeline"
	"github.com/flow-ci/flow-ci/internal/webview"
)

func TestAgentOf(t *testing.T) {
	run := &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "build", UID: "run-uid"},
		Status: v1alpha1.PipelineRunStatus{Branch: "main", Steps: []v1alpha1.StepStatus{{Name: "test"}, {Name: "pack"}}}}
	ctrl := func(kind string, uid types.UID) []metav1.OwnerReference {
		return []metav1.OwnerReference{{Kind: kind, Name: "x", UID: uid, Controller: new(true)}}
	}
	good := func() (*corev1.Pod, *batchv1.Job) {
		labels := map[string]string{v1alpha1.LabelComponent: v1alpha1.ComponentStep, v1alpha1.LabelStepIndex: "1", v1alpha1.LabelRunUID: "run-uid"}
		job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{UID: "job-uid", Labels: maps.Clone(labels), OwnerReferences: ctrl("PipelineRun", "run-uid")}}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "pod-uid", Labels: labels, OwnerReferences: ctrl("Job", "job-uid")},
			Status: corev1.PodStatus{Phase: corev1.PodRunning}}
		return pod, job
	}
	tests := []struct {
		name   string
		change func(*corev1.Pod, *batchv1.Job)
		ok     bool
	}{
		{"a running step pod of the run's Job", func(*corev1.Pod, *batchv1.Job) {}, true},
		{"another pod than the token's", func(p *corev1.Pod, _ *batchv1.Job) { p.UID = "other" }, false},
		{"a pod the kubelet has not yet reported running", func(p *corev1.Pod, _ *batchv1.Job) { p.Status.Phase = corev1.PodPending }, true},
		{"a pod that ended", func(p *corev1.Pod, _ *batchv1.Job) { p.Status.Phase = corev1.PodSucceeded }, false},
		{"a pod being deleted", func(p *corev1.Pod, _ *batchv1.Job) { p.DeletionTimestamp = new(metav1.Now()) }, false},
		{"a clone pod under a step Job", func(p *corev1.Pod, _ *batchv1.Job) { p.Labels[v1alpha1.LabelComponent] = v1alpha1.ComponentClone }, false},
		{"another component", func(p *corev1.Pod, j *batchv1.Job) {
			p.Labels[v1alpha1.LabelComponent], j.Labels[v1alpha1.LabelComponent] = "workspace", "workspace"
		}, false},
		{"a pod a tenant made with the labels, owned by no Job", func(p *corev1.Pod, _ *batchv1.Job) { p.OwnerReferences = nil }, false},
		{"a Job that is not the run's", func(_ *corev1.Pod, j *batchv1.Job) { j.OwnerReferences = ctrl("PipelineRun", "another-run") }, false},
		{"a label naming another run", func(p *corev1.Pod, _ *batchv1.Job) { p.Labels[v1alpha1.LabelRunUID] = "another-run" }, false},
		{"a step the run does not have", func(p *corev1.Pod, j *batchv1.Job) {
			p.Labels = map[string]string{v1alpha1.LabelComponent: v1alpha1.ComponentStep, v1alpha1.LabelStepIndex: "7", v1alpha1.LabelRunUID: "run-uid"}
			j.Labels = p.Labels
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod, job := good()
			tc.change(pod, job)
			a, err := agentOf("pod-uid", pod, job, run)
			if tc.ok != (err == nil) {
				t.Fatalf("agentOf = %+v, %v; want ok %v", a, err, tc.ok)
			}
			if err != nil && !errors.Is(err, webview.ErrUnauthenticated) {
				t.Errorf("error %v, want ErrUnauthenticated", err)
			}
			if tc.ok && (a != api.Agent{Namespace: "ns", Run: "build", RunUID: "run-uid", Component: "step", Step: 1, StepName: "pack", Branch: "main"}) {
				t.Errorf("agent %+v", a)
			}
		})
	}
}

func TestBoundPod(t *testing.T) {
	sa := authenticationv1.UserInfo{Username: "system:serviceaccount:ns:default",
		Extra: map[string]authenticationv1.ExtraValue{extraPodName: {"p"}, extraPodUID: {"u"}}}
	tests := []struct {
		name string
		st   authenticationv1.TokenReviewStatus
		ok   bool
	}{
		{"a bound token for the archive", authenticationv1.TokenReviewStatus{Authenticated: true, Audiences: []string{api.AgentAudience}, User: sa}, true},
		{"another audience", authenticationv1.TokenReviewStatus{Authenticated: true, Audiences: []string{"https://kubernetes.default.svc"}, User: sa}, false},
		{"not authenticated", authenticationv1.TokenReviewStatus{Audiences: []string{api.AgentAudience}, User: sa}, false},
		{"a user, not a ServiceAccount", authenticationv1.TokenReviewStatus{Authenticated: true, Audiences: []string{api.AgentAudience},
			User: authenticationv1.UserInfo{Username: "alice", Extra: sa.Extra}}, false},
		{"a token bound to no pod", authenticationv1.TokenReviewStatus{Authenticated: true, Audiences: []string{api.AgentAudience},
			User: authenticationv1.UserInfo{Username: sa.Username}}, false},
	}
	for _, tc := range tests {
		ns, pod, uid, ok := boundPod(tc.st)
		if ok != tc.ok || ok && (ns != "ns" || pod != "p" || uid != "u") {
			t.Errorf("%s: %q %q %q %v", tc.name, ns, pod, uid, ok)
		}
	}
}

// Only the step the operator adds, in a run that may save, saves caches; the clone
// restores them.
func TestAgentOfCaches(t *testing.T) {
	run := func(labels map[string]string, branch string) *v1alpha1.PipelineRun {
		return &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "b", UID: "r", Labels: labels},
			Status: v1alpha1.PipelineRunStatus{Branch: branch, Steps: []v1alpha1.StepStatus{{Name: "build"}, {Name: pipeline.SaveCachesStep}}}}
	}
	trusted := map[string]string{v1alpha1.LabelCacheWrite: "true"}
	untrusted := map[string]string{v1alpha1.LabelCacheWrite: "true", v1alpha1.LabelUntrusted: "true"}
	pod := func(component, index string) (*corev1.Pod, *batchv1.Job) {
		l := map[string]string{v1alpha1.LabelComponent: component, v1alpha1.LabelRunUID: "r"}
		if index != "" {
			l[v1alpha1.LabelStepIndex] = index
		}
		job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{UID: "j", Labels: maps.Clone(l),
			OwnerReferences: []metav1.OwnerReference{{Kind: "PipelineRun", UID: "r", Controller: new(true)}}}}
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "p", Labels: l,
			OwnerReferences: []metav1.OwnerReference{{Kind: "Job", UID: "j", Controller: new(true)}}}}, job
	}
	tests := []struct {
		name             string
		run              *v1alpha1.PipelineRun
		component, index string
		component2       string
		saves            bool
	}{
		{"the saving step of a trusted run", run(trusted, "main"), "step", "1", "step", true},
		{"another step of it", run(trusted, "main"), "step", "0", "step", false},
		{"the saving step of an untrusted pull request", run(untrusted, "main"), "step", "1", "step", false},
		{"the saving step of a run without cacheWrite", run(nil, "main"), "step", "1", "step", false},
		{"the saving step of a detached run", run(trusted, ""), "step", "1", "step", false},
		{"the clone", run(trusted, "main"), "clone", "", "clone", false},
	}
	for _, tc := range tests {
		p, j := pod(tc.component, tc.index)
		a, err := agentOf("p", p, j, tc.run)
		if err != nil || a.SavesCaches != tc.saves || a.Component != tc.component2 {
			t.Errorf("%s: %+v, %v; want saves %v", tc.name, a, err, tc.saves)
		}
	}
}
