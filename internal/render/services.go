package render

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/flow-ci/flow-ci/internal/pipeline"
)

// readyPeriod is how often a service's readiness check runs while it starts.
const readyPeriod = 2 * time.Second

// withServices adds the step's services as native sidecars: init containers with
// restartPolicy Always, started in order after the pod's other init containers. The
// kubelet starts the step's container only once each has passed its startup probe (the
// readiness check), and stops them when the step's container ends, so the Job ends with
// the step. A check that keeps failing past its timeout makes the kubelet restart the
// service; the operator fails the step then (runstate.CheckPod), so the wait is bounded.
// Services get neither the workspace nor the step's secrets. Their command, arguments
// and check are escaped like the step's env: the kubelet would expand $(VAR) in them.
func withServices(spec *corev1.PodSpec, step pipeline.Step, cfg Config) {
	for _, s := range step.Services {
		c := corev1.Container{
			Name:                     pipeline.ServiceContainerName(s.Name),
			Image:                    s.Image,
			ImagePullPolicy:          cfg.ImagePullPolicy,
			Command:                  escapeAll(s.Command),
			Args:                     escapeAll(s.Args),
			Env:                      forKubelet(serviceEnv(s)),
			RestartPolicy:            new(corev1.ContainerRestartPolicyAlways),
			StartupProbe:             startupProbe(s.Ready),
			TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
			SecurityContext:          containerSecurityContext(false),
			Resources:                ServiceResources(s, cfg),
		}
		for _, p := range s.Ports {
			c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: p, Protocol: corev1.ProtocolTCP})
		}
		spec.InitContainers = append(spec.InitContainers, c)
	}
}

// escapeAll escapes each argument for the kubelet's $(VAR) expansion, so a container
// (the clone, a service) gets the words it was given, as a step's script does.
func escapeAll(args []string) []string {
	if args == nil {
		return nil
	}
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = escapeExpansion(a)
	}
	return out
}

func serviceEnv(s pipeline.Service) []corev1.EnvVar {
	out := []corev1.EnvVar{{Name: "CI", Value: "true"}}
	for _, e := range s.Env {
		if e.Name == "CI" {
			out[0].Value = e.Value
			continue
		}
		out = append(out, corev1.EnvVar{Name: e.Name, Value: e.Value})
	}
	return out
}

// startupProbe runs the readiness check every readyPeriod until it passes, for at most
// its timeout; nil without one (the service counts as ready once it has started).
func startupProbe(r *pipeline.Readiness) *corev1.Probe {
	if r == nil {
		return nil
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = pipeline.DefaultReadyTimeout
	}
	p := &corev1.Probe{
		PeriodSeconds:    int32(readyPeriod / time.Second),
		TimeoutSeconds:   int32(readyPeriod / time.Second),
		FailureThreshold: int32((timeout + readyPeriod - 1) / readyPeriod),
		SuccessThreshold: 1,
	}
	if r.TCP > 0 {
		p.TCPSocket = &corev1.TCPSocketAction{Port: intstr.FromInt32(r.TCP)}
	} else {
		p.Exec = &corev1.ExecAction{Command: escapeAll(r.Command)} // the prober expands $(VAR) too
	}
	return p
}
