package pipelinerun

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/render"
)

// TestSameHold: a tenant's look-alike of a run's hold is refused on everything the
// scheduler would read of it once nominated, and on what would run were its gate lifted.
func TestSameHold(t *testing.T) {
	run := newRunObject("ns", "r", "https://example.com/r.git")
	run.UID = "run-uid"
	peak := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("600m")}
	rendered := render.RenderHoldPod(run, testRender, "node-a", peak)
	for _, c := range []struct {
		name string
		edit func(*corev1.Pod)
		ok   bool
	}{
		{"the hold itself", func(*corev1.Pod) {}, true},
		{"limits a LimitRange added", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}
		}, true},
		{"ungated", func(p *corev1.Pod) { p.Spec.SchedulingGates = nil }, false},
		{"more CPU", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("64")
		}, false},
		{"another resource", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests["example.com/gpu"] = resource.MustParse("1")
		}, false},
		{"pod-level resources", func(p *corev1.Pod) { p.Spec.Resources = &corev1.ResourceRequirements{} }, false},
		{"overhead", func(p *corev1.Pod) {
			p.Spec.Overhead = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
		}, false},
		{"a runtime class", func(p *corev1.Pod) { p.Spec.RuntimeClassName = ptr.To("kata") }, false},
		{"a resource claim", func(p *corev1.Pod) { p.Spec.ResourceClaims = []corev1.PodResourceClaim{{Name: "gpu"}} }, false},
		{"a priority class", func(p *corev1.Pod) { p.Spec.PriorityClassName = "flow-ci-steps" }, false},
		{"another node", func(p *corev1.Pod) {
			p.Spec.Affinity = render.RenderHoldPod(run, testRender, "node-b", peak).Spec.Affinity
		}, false},
		{"a node selector", func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"zone": "a"} }, false},
		{"bound by hand", func(p *corev1.Pod) { p.Spec.NodeName = "node-a" }, false},
		{"an init container", func(p *corev1.Pod) { p.Spec.InitContainers = []corev1.Container{{Name: "x", Image: "evil"}} }, false},
		{"another image", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "evil" }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			live := rendered.DeepCopy()
			c.edit(live)
			if why := sameHold(live, rendered); (why == "") != c.ok {
				t.Errorf("sameHold = %q, want the hold accepted: %v", why, c.ok)
			}
		})
	}
	if rendered.Labels[civ1alpha1.LabelComponent] != civ1alpha1.ComponentHold {
		t.Fatal("not a hold")
	}
}
