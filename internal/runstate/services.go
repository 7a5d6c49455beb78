package runstate

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// ServiceNotReady is the status of a service (a native sidecar) of a pod still
// initializing that was restarted and is not ready: it exited, or its readiness check
// failed for its whole timeout and the kubelet restarted it. The step's container never
// starts then, so the watchdog fails the step instead of letting the kubelet retry for
// ever; nil when no service is in that state. Once the pod is initialized (every
// service was ready), a service's restart is the step's to live with, as on any CI.
func ServiceNotReady(p *corev1.Pod) *corev1.ContainerStatus {
	if p == nil || p.Status.Phase != corev1.PodPending || !p.DeletionTimestamp.IsZero() {
		return nil
	}
	if c := podCondition(p, corev1.PodInitialized); c != nil && c.Status == corev1.ConditionTrue {
		return nil
	}
	for i := range p.Status.InitContainerStatuses {
		cs := &p.Status.InitContainerStatuses[i]
		if strings.HasPrefix(cs.Name, v1alpha1.ServiceContainerPrefix) && cs.RestartCount > 0 && (cs.Started == nil || !*cs.Started) {
			return cs
		}
	}
	return nil
}

// ServiceName is the name the file gives the service of a container.
func ServiceName(container string) string {
	return strings.TrimPrefix(container, v1alpha1.ServiceContainerPrefix)
}

func serviceMessage(cs *corev1.ContainerStatus) string {
	msg := fmt.Sprintf("service %s was not ready: it was restarted %d time(s) before the step could start", ServiceName(cs.Name), cs.RestartCount)
	if t := cs.LastTerminationState.Terminated; t != nil {
		msg += fmt.Sprintf(" (last exit code %d)", t.ExitCode)
	}
	return msg
}
