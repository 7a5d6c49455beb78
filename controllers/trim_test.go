package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/pipeline"
)

func size(t *testing.T, o any) int {
	t.Helper()
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}

// TestForeignLabelledObjectsCostLittle creates, as a tenant could, objects that carry
// the run-UID label with large labels, annotations and specs, and reads them back from a
// cache built with CacheOptions: each costs a few hundred bytes.
func TestForeignLabelledObjectsCostLittle(t *testing.T) {
	ctx := context.Background()
	ns := env.NewNamespace(t)
	big := strings.Repeat("x", 200<<10)
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: ns, Name: name,
			Labels:      map[string]string{v1alpha1.LabelRunUID: "forged", "big": strings.Repeat("y", 63)},
			Annotations: map[string]string{"big": big, v1alpha1.AnnotationRunName: "x"}}
	}
	spec := corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "busybox:1",
		Env: []corev1.EnvVar{{Name: "BIG", Value: big}}}}}
	objs := []client.Object{
		&corev1.Pod{ObjectMeta: meta("pod"), Spec: spec},
		&batchv1.Job{ObjectMeta: meta("job"), Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: spec}}},
		&corev1.PersistentVolumeClaim{ObjectMeta: meta("pvc"), Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}},
	}
	for _, o := range objs {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	opts := CacheOptions()
	opts.Scheme = env.Scheme
	opts.DefaultNamespaces = map[string]cache.Config{ns: {}}
	c, err := cache.New(env.Config, opts)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	go func() { _ = c.Start(cctx) }()
	got := []client.Object{&corev1.Pod{}, &batchv1.Job{}, &corev1.PersistentVolumeClaim{}}
	for i, o := range got {
		if _, err := c.GetInformer(cctx, o); err != nil {
			t.Fatal(err)
		}
		if !c.WaitForCacheSync(cctx) {
			t.Fatal("cache did not sync")
		}
		if err := c.Get(cctx, client.ObjectKeyFromObject(objs[i]), o); err != nil {
			t.Fatalf("%T: %v", o, err)
		}
		if n := size(t, o); n > 400 {
			t.Errorf("%T costs %d bytes in the cache: %s", o, n, must(json.Marshal(o)))
		}
		if len(o.GetLabels()) != 0 {
			t.Errorf("%T kept labels %v: a foreign object must not match the controllers' selectors", o, o.GetLabels())
		}
	}
}

func must(b []byte, err error) string {
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// TestTrimKeepsWhatStatusReads: a child's pod keeps the fields status derivation and
// the watchdogs read, bounded, and loses the rest.
func TestTrimKeepsWhatStatusReads(t *testing.T) {
	jobRef := metav1.OwnerReference{APIVersion: "batch/v1", Kind: "Job", Name: "r-0-a", UID: "job-uid", Controller: ptr.To(true)}
	long := strings.Repeat("e", 10<<10)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "n", UID: "u", OwnerReferences: []metav1.OwnerReference{jobRef},
			Labels:      map[string]string{v1alpha1.LabelRunUID: "run", v1alpha1.LabelComponent: "step", batchv1.JobNameLabel: "r-0-a", "other": "x"},
			Annotations: map[string]string{v1alpha1.AnnotationRunName: "r", "other": long}},
		Spec: corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "step", Image: "busybox:1", Command: []string{long}}}},
		Status: corev1.PodStatus{Phase: corev1.PodFailed,
			Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, Message: long}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "step", Image: "busybox:1",
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3, Message: long + "the end", FinishedAt: metav1.NewTime(time.Unix(1e9, 0))}}}}},
	}
	out, _ := TrimPod(pod)
	p := out.(*corev1.Pod)
	if p.Spec.NodeName != "node-a" || p.Spec.Containers[0].Name != "step" || p.Spec.Containers[0].Command != nil {
		t.Errorf("spec: %+v", p.Spec)
	}
	if _, ok := p.Labels["other"]; ok || p.Labels[v1alpha1.LabelRunUID] != "run" || p.Labels[v1alpha1.LabelComponent] != "step" || len(p.Labels) != 2 {
		t.Errorf("labels: %v", p.Labels)
	}
	if len(p.Annotations) != 1 || p.Annotations[v1alpha1.AnnotationRunName] != "r" {
		t.Errorf("annotations: %v", p.Annotations)
	}
	term := p.Status.ContainerStatuses[0].State.Terminated
	if !term.FinishedAt.Equal(&metav1.Time{Time: time.Unix(1e9, 0)}) {
		t.Errorf("terminated: finished at %v", term.FinishedAt)
	}
	if term.ExitCode != 3 || len(term.Message) > v1alpha1.MaxMessageBytes || !strings.HasSuffix(term.Message, "the end") {
		t.Errorf("terminated: exit %d, %d bytes", term.ExitCode, len(term.Message))
	}
	if len(p.Status.Conditions[0].Message) > maxShortMessage {
		t.Errorf("condition message of %d bytes", len(p.Status.Conditions[0].Message))
	}
	if n := size(t, p); n > 6<<10 {
		t.Errorf("trimmed pod is %d bytes", n)
	}
}

// TestTrimKeepsEveryService: a step pod with the secrets' helper and the most services
// keeps each init container's status, with what the services' watchdog reads (started,
// restarts, last exit code), and its Initialized condition.
func TestTrimKeepsEveryService(t *testing.T) {
	jobRef := metav1.OwnerReference{APIVersion: "batch/v1", Kind: "Job", Name: "r-0-a", UID: "job-uid", Controller: ptr.To(true)}
	statuses := []corev1.ContainerStatus{{Name: "flowci-mask"}}
	for i := range pipeline.MaxServices {
		statuses = append(statuses, corev1.ContainerStatus{Name: fmt.Sprintf("service-s%d", i), RestartCount: int32(i + 1), Started: ptr.To(false),
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Message: "dropped"}}})
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "n", OwnerReferences: []metav1.OwnerReference{jobRef}},
		Status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: statuses,
			Conditions: []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionFalse}}}}
	out, _ := TrimPod(pod)
	p := out.(*corev1.Pod)
	if len(p.Status.InitContainerStatuses) != 1+pipeline.MaxServices {
		t.Fatalf("%d init statuses kept, want %d", len(p.Status.InitContainerStatuses), 1+pipeline.MaxServices)
	}
	last := p.Status.InitContainerStatuses[pipeline.MaxServices]
	if last.Name != "service-s3" || last.RestartCount != 4 || last.Started == nil || *last.Started ||
		last.LastTerminationState.Terminated == nil || last.LastTerminationState.Terminated.ExitCode != 137 || last.LastTerminationState.Terminated.Message != "" {
		t.Errorf("the last service: %+v", last)
	}
	if len(p.Status.Conditions) != 1 || p.Status.Conditions[0].Type != corev1.PodInitialized {
		t.Errorf("conditions %v", p.Status.Conditions)
	}
}

// TestTrimKeepsTheHold: a run's hold keeps whose it is and where it is nominated, and
// nothing of its spec.
func TestTrimKeepsTheHold(t *testing.T) {
	runRef := metav1.OwnerReference{APIVersion: v1alpha1.GroupVersion.String(), Kind: "PipelineRun", Name: "r", UID: "run", Controller: ptr.To(true)}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "r-hold", Namespace: "n", UID: "u", OwnerReferences: []metav1.OwnerReference{runRef},
			Labels: map[string]string{v1alpha1.LabelRunUID: "run", v1alpha1.LabelComponent: v1alpha1.ComponentHold}},
		Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "hold", Image: "flow-ci:1", Args: []string{strings.Repeat("x", 4096)}}}},
		Status: corev1.PodStatus{Phase: corev1.PodPending, NominatedNodeName: "node-a"},
	}
	out, _ := TrimPod(pod)
	p := out.(*corev1.Pod)
	if !metav1.IsControlledBy(p, &metav1.ObjectMeta{UID: "run"}) || p.Labels[v1alpha1.LabelRunUID] != "run" || p.Labels[v1alpha1.LabelComponent] != v1alpha1.ComponentHold {
		t.Errorf("meta: %+v", p.ObjectMeta)
	}
	if p.Status.NominatedNodeName != "node-a" || len(p.Spec.Containers) != 0 {
		t.Errorf("kept %+v, %+v", p.Spec, p.Status)
	}
}

// TestTrimJobKeepsTheEarliestOutcome: SuccessCriteriaMet survives the trim, so a
// step's dependents start on it, and interim conditions that decide nothing do not.
func TestTrimJobKeepsTheEarliestOutcome(t *testing.T) {
	runRef := metav1.OwnerReference{APIVersion: v1alpha1.GroupVersion.String(), Kind: "PipelineRun", Name: "r", UID: "run", Controller: ptr.To(true)}
	cond := func(c batchv1.JobConditionType, s corev1.ConditionStatus) batchv1.JobCondition {
		return batchv1.JobCondition{Type: c, Status: s, Reason: "r", Message: strings.Repeat("m", 10<<10)}
	}
	for _, tc := range []struct {
		name  string
		conds []batchv1.JobCondition
		want  []batchv1.JobConditionType
	}{
		{"success criteria met", []batchv1.JobCondition{cond(batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue)}, []batchv1.JobConditionType{batchv1.JobSuccessCriteriaMet}},
		{"then complete", []batchv1.JobCondition{cond(batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue), cond(batchv1.JobComplete, corev1.ConditionTrue)},
			[]batchv1.JobConditionType{batchv1.JobSuccessCriteriaMet, batchv1.JobComplete}},
		{"a failure target decides nothing yet", []batchv1.JobCondition{cond(batchv1.JobFailureTarget, corev1.ConditionTrue)}, nil},
		{"suspended is not an outcome", []batchv1.JobCondition{cond(batchv1.JobSuspended, corev1.ConditionTrue)}, nil},
		{"a false condition", []batchv1.JobCondition{cond(batchv1.JobComplete, corev1.ConditionFalse)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "j", OwnerReferences: []metav1.OwnerReference{runRef}},
				Status: batchv1.JobStatus{Conditions: tc.conds}}
			out, _ := TrimJob(job)
			var got []batchv1.JobConditionType
			for _, c := range out.(*batchv1.Job).Status.Conditions {
				got = append(got, c.Type)
				if len(c.Message) > maxShortMessage {
					t.Errorf("%s kept a message of %d bytes", c.Type, len(c.Message))
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("kept %v, want %v", got, tc.want)
			}
		})
	}
}

// TestFinishedPodsLeaveTheCache: a pod is cached while it runs and leaves the cache when
// it finishes, so the cache does not grow with history.
func TestFinishedPodsLeaveTheCache(t *testing.T) {
	ctx := context.Background()
	ns := env.NewNamespace(t)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "step", Labels: map[string]string{v1alpha1.LabelRunUID: "run"}},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "step", Image: "busybox:1"}}}}
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	opts := CacheOptions()
	opts.Scheme, opts.DefaultNamespaces = env.Scheme, map[string]cache.Config{ns: {}}
	c, err := cache.New(env.Config, opts)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := c.GetInformer(cctx, &corev1.Pod{}); err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.Start(cctx) }()
	c.WaitForCacheSync(cctx)
	inCache := func() bool { return c.Get(cctx, client.ObjectKeyFromObject(pod), &corev1.Pod{}) == nil }
	for _, phase := range []corev1.PodPhase{corev1.PodRunning, corev1.PodSucceeded} {
		pod.Status.Phase = phase
		if err := env.Client.Status().Update(ctx, pod); err != nil {
			t.Fatal(err)
		}
		want := phase == corev1.PodRunning
		deadline := time.Now().Add(10 * time.Second)
		for inCache() != want && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if inCache() != want {
			t.Errorf("%s: in the cache %v, want %v", phase, !want, want)
		}
	}
}
