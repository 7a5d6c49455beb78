package render

import (
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

func TestRenderHoldPod(t *testing.T) {
	peak := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1200m"), corev1.ResourceMemory: resource.MustParse("1Gi")}
	long := testRun()
	long.Name = strings.Repeat("a-very-long-run-name-", 4)
	for _, c := range []struct {
		name string
		run  *v1alpha1.PipelineRun
	}{{"a run", testRun()}, {"a run with a long name", long}} {
		t.Run(c.name, func(t *testing.T) {
			pod := RenderHoldPod(c.run, testCfg, "worker-1", peak)
			if n := len(pod.Name); n > maxNameLen || pod.Name != HoldPodName(c.run) {
				t.Errorf("name %q (%d)", pod.Name, n)
			}
			if !metav1.IsControlledBy(pod, c.run) || pod.Labels[v1alpha1.LabelComponent] != v1alpha1.ComponentHold ||
				pod.Labels[v1alpha1.LabelRunUID] != string(c.run.UID) {
				t.Errorf("owner %v, labels %v", pod.OwnerReferences, pod.Labels)
			}
			if len(pod.Spec.SchedulingGates) != 1 || pod.Spec.SchedulingGates[0].Name != v1alpha1.SchedulingGateHold {
				t.Errorf("gates %v: the hold must never be scheduled", pod.Spec.SchedulingGates)
			}
			if d := pod.Spec.ActiveDeadlineSeconds; d == nil || *d != 1 {
				t.Errorf("activeDeadlineSeconds %v: a hold someone ungated must stop at once", d)
			}
			if got := pod.Spec.Containers[0].Resources.Requests; !got.Cpu().Equal(peak[corev1.ResourceCPU]) || !got.Memory().Equal(peak[corev1.ResourceMemory]) {
				t.Errorf("requests %v, want the peak %v", got, peak)
			}
			if got := pod.Spec.Containers[0].Resources.Limits; len(got) != 0 {
				t.Errorf("limits %v: it runs nothing", got)
			}
			if n := pinnedNodeOf(pod.Spec.Affinity); n != "worker-1" {
				t.Errorf("pinned to %q", n)
			}
			if *pod.Spec.AutomountServiceAccountToken || pod.Spec.PriorityClassName != "" {
				t.Errorf("token %v, class %q", *pod.Spec.AutomountServiceAccountToken, pod.Spec.PriorityClassName)
			}
			peak[corev1.ResourceCPU] = resource.MustParse("9")
			if pod.Spec.Containers[0].Resources.Requests.Cpu().String() == "9" {
				t.Error("the requests share the caller's map")
			}
			peak[corev1.ResourceCPU] = resource.MustParse("1200m")
		})
	}
}

func TestStepPriorityClass(t *testing.T) {
	cfg := testCfg
	cfg.StepPriorityClass = "flow-ci-steps"
	for _, c := range []struct {
		name, node string
		cfg        Config
		want       string
	}{
		{"pinned, hold on", "worker-1", cfg, "flow-ci-steps"},
		{"not pinned (ReadWriteMany)", "", cfg, ""},
		{"pinned, hold off", "worker-1", testCfg, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			job, err := RenderStepJob(testRun(), seedPipeline(), 0, c.node, c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := job.Spec.Template.Spec.PriorityClassName; got != c.want {
				t.Errorf("class %q, want %q", got, c.want)
			}
		})
	}
}

func pinnedNodeOf(a *corev1.Affinity) string {
	return PinnedNode(&batchv1.Job{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Affinity: a}}}})
}

func TestStepClassProblem(t *testing.T) {
	class := func(name string, value int32, def bool) schedulingv1.PriorityClass {
		return schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Value: value, GlobalDefault: def}
	}
	for _, c := range []struct {
		name    string
		classes []schedulingv1.PriorityClass
		want    string
	}{
		{"above the implicit default", []schedulingv1.PriorityClass{class("flow-ci-steps", 1, false)}, ""},
		{"missing", []schedulingv1.PriorityClass{class("other", 1, false)}, "does not exist"},
		{"at a default of 0", []schedulingv1.PriorityClass{class("flow-ci-steps", 0, false)}, "does not rank above"},
		{"below a globalDefault", []schedulingv1.PriorityClass{class("flow-ci-steps", 1, false), class("normal", 1000, true)}, "(1000)"},
		{"above a globalDefault", []schedulingv1.PriorityClass{class("flow-ci-steps", 1001, false), class("normal", 1000, true)}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := StepClassProblem("flow-ci-steps", c.classes)
			if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}
