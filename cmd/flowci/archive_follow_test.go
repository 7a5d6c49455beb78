package main

import (
	"context"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/archive"
)

// followCLI runs logs -f of run in ns in the background, as a reader of it.
type followCLI struct {
	t           *testing.T
	out, errOut lockedBuffer
	done        chan int
}

func startFollow(t *testing.T, a *testArchive, ns, run string) *followCLI {
	kc := kubeconfig(t, &clientcmdapi.AuthInfo{Token: env.ServiceAccountToken(t, ns, "reader", cliReader...)})
	f := &followCLI{t: t, done: make(chan int)}
	go func() { f.done <- runCLIInto(&f.out, &f.errOut, kc, a.ns, "-n", ns, "logs", "-f", run) }()
	return f
}

// waitFor waits until the output holds what.
func (f *followCLI) waitFor(what string) {
	f.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(f.out.String(), what); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			f.t.Fatalf("%q did not show:\n%s\n%s", what, f.out.String(), f.errOut.String())
		}
	}
}

// end waits for the CLI to exit, and returns its code and output.
func (f *followCLI) end() (int, string) {
	f.t.Helper()
	select {
	case code := <-f.done:
		return code, f.out.String()
	case <-time.After(30 * time.Second):
		f.t.Fatalf("logs -f did not end with the run:\n%s", f.out.String())
	}
	return 0, ""
}

// runningRun creates a run in ns whose one step, build, runs.
func runningRun(t *testing.T, ns, name string) *v1alpha1.PipelineRun {
	t.Helper()
	ctx := context.Background()
	run := &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.PipelineRunSpec{RepoURL: "https://git.example/org/app.git"}}
	if err := env.Client.Create(ctx, run); err != nil {
		t.Fatal(err)
	}
	run.Status = v1alpha1.PipelineRunStatus{Phase: v1alpha1.PhaseRunning,
		Steps: []v1alpha1.StepStatus{{Name: "build", Phase: v1alpha1.StepRunning, JobName: name + "-0-build"}}}
	if err := env.Client.Status().Update(ctx, run); err != nil {
		t.Fatal(err)
	}
	return run
}

// failStep ends run: its step failed with exit code 3.
func failStep(t *testing.T, run *v1alpha1.PipelineRun) {
	t.Helper()
	ctx := context.Background()
	exit := int32(3)
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(run), run); err != nil {
		t.Fatal(err)
	}
	run.Status.Phase = v1alpha1.PhaseFailed
	run.Status.Steps[0].Phase, run.Status.Steps[0].ExitCode = v1alpha1.StepFailed, &exit
	if err := env.Client.Status().Update(ctx, run); err != nil {
		t.Fatal(err)
	}
}

// TestFollowFromArchive: logs -f of a running step whose pods were deleted follows its
// log in the archive as it is stored, asking each time from where it has read to, so
// each line shows once; it ends when the archive has the whole log and the run ended.
func TestFollowFromArchive(t *testing.T) {
	ns := env.NewNamespace(t)
	a := newTestArchive(t, true)
	run := runningRun(t, ns, "evicted")
	uid := string(run.UID)
	a.put(t, ns, uid, storedLog{"step-0-p1111", []byte("line 1\nline 2 in two "), archive.LogState{LastTime: t0}})

	f := startFollow(t, a, ns, "evicted")
	f.waitFor("line 1\n")
	a.put(t, ns, uid, storedLog{"step-0-p1111", []byte("halves\n"), archive.LogState{LastTime: t0.Add(time.Second)}})
	f.waitFor("halves\n")
	a.put(t, ns, uid, storedLog{"step-0-p1111", []byte("line 3\n"), archive.LogState{LastTime: t0.Add(2 * time.Second), Done: true}})
	f.waitFor("line 3\n")
	failStep(t, run)
	code, out := f.end()
	want := "==> build: Running (its pods are gone; its log from the run archive follows)\nline 1\nline 2 in two halves\nline 3\n==> evicted: Failed\n"
	if code != 3 || out != want {
		t.Errorf("exit %d, want 3\n%q\nwant\n%q\n%s", code, out, want, f.errOut.String())
	}
}

// TestFollowPodDeletedMidStream: when the pod whose log logs -f streams is deleted
// while its step runs, the rest of its log comes from the archive, after the lines the
// pod's stream showed. (envtest runs no kubelet, so the pod's stream ends at once,
// empty: the archive then shows the whole log.)
func TestFollowPodDeletedMidStream(t *testing.T) {
	ctx := context.Background()
	ns := env.NewNamespace(t)
	a := newTestArchive(t, true)
	run := runningRun(t, ns, "deleted")
	labels := map[string]string{v1alpha1.LabelRunUID: string(run.UID), v1alpha1.LabelComponent: v1alpha1.ComponentStep,
		v1alpha1.LabelStepIndex: "0"}
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deleted-0-build", Labels: labels,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: "PipelineRun", Name: run.Name,
			UID: run.UID, Controller: new(true)}}},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "step", Image: "busybox"}}}}}}
	if err := env.Client.Create(ctx, job); err != nil {
		t.Fatal(err)
	}
	// A finalizer keeps the pod while it is deleted: its container still runs.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deleted-0-build-p2222", Labels: labels,
		Finalizers: []string{"flowci.dev/test-hold"}, OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job",
			Name: job.Name, UID: job.UID, Controller: new(true)}}},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "step", Image: "busybox"}}}}
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Client.Get(ctx, client.ObjectKeyFromObject(pod), pod)
		pod.Finalizers = nil
		_ = env.Client.Update(ctx, pod)
	})
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "step", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
	if err := env.Client.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Delete(ctx, pod); err != nil {
		t.Fatal(err)
	}
	a.put(t, ns, string(run.UID), storedLog{"step-0-p2222", []byte("line 1\nline 2\n"), archive.LogState{LastTime: t0, Done: true}})

	f := startFollow(t, a, ns, "deleted")
	f.waitFor("line 2\n")
	failStep(t, run)
	code, out := f.end()
	if code != 3 || !inOrder(out, "==> build: started\n",
		"==> build: its pod went away; the rest of its log from the run archive follows\nline 1\nline 2\n==> deleted: Failed\n") ||
		strings.Count(out, "line 1") != 1 {
		t.Errorf("exit %d, want 3\n%s", code, out)
	}
}
