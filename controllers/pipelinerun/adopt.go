package pipelinerun

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/render"
)

// sameChild says why an existing child differs from the rendered one in what decides
// what runs and what it can reach, or "" when it does not. Fields the API server
// defaults are not compared. The definition ConfigMap is checked against git instead,
// on the fetch pool (storeDefinition, verifyFunc).
func sameChild(existing, rendered client.Object) string {
	switch e := existing.(type) {
	case *batchv1.Job:
		return samePodSpec(&e.Spec.Template.Spec, &rendered.(*batchv1.Job).Spec.Template.Spec)
	case *corev1.Pod:
		return sameHold(e, rendered.(*corev1.Pod))
	case *corev1.PersistentVolumeClaim:
		if e.Spec.DataSource != nil || e.Spec.DataSourceRef != nil {
			return "it is populated from a data source"
		}
		if !equality.Semantic.DeepEqual(e.Spec.AccessModes, rendered.(*corev1.PersistentVolumeClaim).Spec.AccessModes) {
			return "its access modes differ"
		}
	}
	return ""
}

func samePodSpec(e, r *corev1.PodSpec) string {
	switch {
	case len(e.Containers) != len(r.Containers) || len(e.InitContainers) != len(r.InitContainers):
		return "its containers differ"
	case e.ServiceAccountName != r.ServiceAccountName && r.ServiceAccountName != "":
		return "its ServiceAccount differs"
	case !equality.Semantic.DeepEqual(e.AutomountServiceAccountToken, r.AutomountServiceAccountToken):
		return "its ServiceAccount token differs"
	case !equality.Semantic.DeepEqual(e.SecurityContext, r.SecurityContext):
		return "its security context differs"
	case !equality.Semantic.DeepEqual(e.Volumes, r.Volumes):
		return "its volumes differ"
	}
	both := append(append([]corev1.Container(nil), r.InitContainers...), r.Containers...)
	existing := append(append([]corev1.Container(nil), e.InitContainers...), e.Containers...)
	for i := range both {
		ec, rc := &existing[i], &both[i]
		if ec.Image != rc.Image || !equality.Semantic.DeepEqual(ec.Command, rc.Command) || !equality.Semantic.DeepEqual(ec.Args, rc.Args) ||
			!equality.Semantic.DeepEqual(ec.Env, rc.Env) || ec.WorkingDir != rc.WorkingDir ||
			!equality.Semantic.DeepEqual(ec.VolumeMounts, rc.VolumeMounts) || !equality.Semantic.DeepEqual(ec.SecurityContext, rc.SecurityContext) ||
			!equality.Semantic.DeepEqual(ec.RestartPolicy, rc.RestartPolicy) || !equality.Semantic.DeepEqual(ec.StartupProbe, rc.StartupProbe) ||
			ec.LivenessProbe != nil || ec.ReadinessProbe != nil || ec.Lifecycle != nil {
			return "its container " + rc.Name + " differs"
		}
	}
	return ""
}

// sameHold compares a pod named and owned as the run's hold with the rendered hold in
// what the scheduler reads of it (it must stay gated, keep the steps' peak on the
// node it is pinned to, at the default priority) and in what would run were its gate
// lifted: the operator nominates it to a node, so a tenant's look-alike must not pass.
func sameHold(e, r *corev1.Pod) string {
	switch {
	case !equality.Semantic.DeepEqual(e.Spec.SchedulingGates, r.Spec.SchedulingGates):
		return "its scheduling gates differ"
	case len(e.Spec.Containers) != len(r.Spec.Containers) || len(e.Spec.InitContainers) != 0 ||
		!equality.Semantic.DeepEqual(e.Spec.Containers[0].Resources.Requests, r.Spec.Containers[0].Resources.Requests):
		return "its requests differ"
	case e.Spec.Resources != nil || e.Spec.Overhead != nil || e.Spec.RuntimeClassName != nil || len(e.Spec.ResourceClaims) != 0:
		return "it asks for more than its container's requests"
	case e.Spec.PriorityClassName != r.Spec.PriorityClassName:
		return "its priority class differs"
	case !equality.Semantic.DeepEqual(e.Spec.Affinity, r.Spec.Affinity) || len(e.Spec.NodeSelector) != 0 || e.Spec.NodeName != "":
		return "its node differs"
	}
	return samePodSpec(&e.Spec, &r.Spec)
}

// holdShaped says a pod named and owned as the run's hold is one the operator may
// release: gated as the hold is, running nothing but the hold's container. A tenant's
// look-alike of another shape is left untouched.
func holdShaped(p *corev1.Pod, cfg render.Config) bool {
	return len(p.Spec.SchedulingGates) == 1 && p.Spec.SchedulingGates[0].Name == v1alpha1.SchedulingGateHold &&
		len(p.Spec.InitContainers) == 0 && len(p.Spec.Containers) == 1 && p.Spec.Containers[0].Name == "hold" &&
		p.Spec.Containers[0].Image == cfg.CloneImage && equality.Semantic.DeepEqual(p.Spec.Containers[0].Args, []string{"hold"}) &&
		len(p.Spec.Containers[0].Command) == 0
}
