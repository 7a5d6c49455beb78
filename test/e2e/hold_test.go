//go:build e2e

package e2e

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gittest"
	"github.com/flow-ci/flow-ci/internal/render"
)

// Two steps side by side, 300m of CPU each: the peak the clone reserves is 600m.
const holdPipeline = `name: held
steps:
- name: a
  dependsOn: []
  resources: {cpu: 300m, memory: 32Mi}
  commands: [sleep 5]
- name: b
  dependsOn: []
  resources: {cpu: 300m, memory: 32Mi}
  commands: [sleep 5]
`

// TestHoldKeepsTheNodesRoom fills both nodes so that a naive scheduler fails the run:
// the other node has no CPU left, and a pod of the default priority waits for the CPU
// that the clone's end frees on the run's node, enough to leave too little for either
// step. The run's hold keeps that room: the steps (one class higher) are bound, the
// waiting pod only after them, and the run succeeds. Not parallel: it takes the nodes'
// CPU.
func TestHoldKeepsTheNodesRoom(t *testing.T) {
	nodes := requireNodes(t, 2)
	g := NewWithT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	repo, srv := gitServer(t, map[string]string{"build/flow-ci.yaml": holdPipeline}, gittest.HTTPOptions{})

	// The run's node is the one with room: fill the other first.
	x, y := nodes[0], nodes[1]
	fillY := fillerPod(ns, "fill-other", freeCPU(g, y), y)
	g.Expect(k8s.Create(ctx, fillY)).To(Succeed())
	g.Eventually(func(g Gomega) { g.Expect(boundTo(g, fillY)).To(Equal(y)) }).WithTimeout(time.Minute).Should(Succeed())

	createRun(t, ns, "held", srv.RepoURL(repo), nil)
	var clone corev1.Pod
	g.Eventually(func(g Gomega) {
		pods := &corev1.PodList{}
		g.Expect(k8s.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{civ1alpha1.LabelComponent: civ1alpha1.ComponentClone})).To(Succeed())
		g.Expect(pods.Items).NotTo(BeEmpty())
		clone = pods.Items[0]
		g.Expect(clone.Spec.NodeName).NotTo(BeEmpty())
	}).WithTimeout(time.Minute).WithPolling(100 * time.Millisecond).Should(Succeed())
	g.Expect(clone.Spec.NodeName).To(Equal(x), "the only node with room")

	// A pod that fits once the clone's reservation (600m) is freed, and then leaves less
	// than one step needs (250m of 300m): without the hold neither step could start
	// before it ends. (With a pod leaving 500m, measured without the hold, step b was
	// refused, "Insufficient cpu", and ran only after a.)
	free := freeCPU(g, x)
	want := free.DeepCopy()
	want.Add(resource.MustParse("350m"))
	fillX := fillerPod(ns, "fill-this", want, "")
	t.Logf("node %s: %s CPU free beside the clone (which requests %s); a pod asks for %s", x, free.String(),
		clone.Spec.Containers[0].Resources.Requests.Cpu().String(), want.String())
	g.Expect(k8s.Create(ctx, fillX)).To(Succeed())
	run := getRun(g, ns, "held")
	g.Eventually(func(g Gomega) {
		hold := &corev1.Pod{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: render.HoldPodName(run)}, hold)).To(Succeed())
		g.Expect(hold.Status.NominatedNodeName).To(Equal(x))
	}).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())

	run = waitFinished(t, ns, "held", 4*time.Minute)
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded), toJSON(run.Status))
	var stepsBound time.Time
	for _, st := range run.Status.Steps {
		pods := &corev1.PodList{}
		g.Expect(k8s.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{"job-name": st.JobName})).To(Succeed())
		g.Expect(pods.Items).To(HaveLen(1), "step %s ran once", st.Name)
		g.Expect(pods.Items[0].Spec.NodeName).To(Equal(x))
		g.Expect(pods.Items[0].Spec.PriorityClassName).To(Equal("flow-ci-steps"))
		if at := scheduledAt(pods.Items[0]); at.After(stepsBound) {
			stepsBound = at
		}
	}
	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(fillX), fillX)).To(Succeed())
	if fillX.Spec.NodeName != "" {
		g.Expect(scheduledAt(*fillX).Before(stepsBound)).To(BeFalse(), "the waiting pod was bound at %v, before the steps at %v", scheduledAt(*fillX), stepsBound)
	}
	g.Eventually(func(g Gomega) {
		err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: render.HoldPodName(run)}, &corev1.Pod{})
		g.Expect(client.IgnoreNotFound(err)).To(Succeed())
		g.Expect(err).To(HaveOccurred(), "the hold is gone")
	}).WithTimeout(30 * time.Second).Should(Succeed())
	t.Logf("steps bound on %s by %v; the pod that waited for that room: node %q at %v", x, stepsBound.Format(time.TimeOnly),
		fillX.Spec.NodeName, scheduledAt(*fillX).Format(time.TimeOnly))
	for _, p := range []*corev1.Pod{fillX, fillY} {
		_ = k8s.Delete(ctx, p, client.GracePeriodSeconds(0))
	}
}

// freeCPU is a node's allocatable CPU less what the pods bound to it request.
func freeCPU(g Gomega, node string) resource.Quantity {
	n := &corev1.Node{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Name: node}, n)).To(Succeed())
	free := n.Status.Allocatable.Cpu().DeepCopy()
	pods := &corev1.PodList{}
	g.Expect(k8s.List(context.Background(), pods, client.MatchingFields{"spec.nodeName": node})).To(Succeed())
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		for _, c := range p.Spec.Containers {
			free.Sub(*c.Resources.Requests.Cpu())
		}
	}
	return free
}

// fillerPod sleeps, requesting cpu, on node (any node when "").
func fillerPod(ns, name string, cpu resource.Quantity, node string) *corev1.Pod {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever, AutomountServiceAccountToken: new(false), TerminationGracePeriodSeconds: new(int64(0)),
		SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: new(true), RunAsUser: new(int64(65532)),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
		Containers: []corev1.Container{{Name: "sleep", Image: "localhost/busybox:local", ImagePullPolicy: corev1.PullIfNotPresent,
			Command:         []string{"sleep", "600"},
			Resources:       corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: cpu}},
			SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: new(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}}},
	}}
	if node != "" {
		pod.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{
				{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{node}}}}}}}}
	}
	return pod
}

func boundTo(g Gomega, p *corev1.Pod) string {
	got := &corev1.Pod{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(p), got)).To(Succeed())
	return got.Spec.NodeName
}

// scheduledAt is when the scheduler bound the pod (zero: not yet).
func scheduledAt(p corev1.Pod) time.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}
