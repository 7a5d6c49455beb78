package pipelinerun

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/flow-ci/flow-ci/internal/pipeline"
	"github.com/flow-ci/flow-ci/internal/render"
)

// TestSamePodSpecServices: a Job that looks like a step's but whose service would run
// something else, stay a plain init container, or pass another readiness check is not
// adopted.
func TestSamePodSpecServices(t *testing.T) {
	def, err := pipeline.Parse([]byte(`name: s
steps:
- name: test
  services:
  - {name: db, image: "postgres:16", ports: [5432]}
  - {name: cache, image: "redis:7", ready: {command: [redis-cli, ping]}}
  commands: [make test]
`))
	if err != nil {
		t.Fatal(err)
	}
	run := newRunObject("ns", "r", "https://example.com/r.git")
	job, err := render.RenderStepJob(run, &def.Pipeline, 0, "", testRender)
	if err != nil {
		t.Fatal(err)
	}
	rendered := &job.Spec.Template.Spec
	for _, c := range []struct {
		name string
		edit func(*corev1.PodSpec)
		ok   bool
	}{
		{"the step itself", func(*corev1.PodSpec) {}, true},
		{"another service image", func(s *corev1.PodSpec) { s.InitContainers[0].Image = "evil:1" }, false},
		{"a plain init container", func(s *corev1.PodSpec) { s.InitContainers[0].RestartPolicy = nil }, false},
		{"no readiness check", func(s *corev1.PodSpec) { s.InitContainers[0].StartupProbe = nil }, false},
		{"another check command", func(s *corev1.PodSpec) { s.InitContainers[1].StartupProbe.Exec.Command = []string{"sh", "-c", "evil"} }, false},
		{"a longer wait", func(s *corev1.PodSpec) { s.InitContainers[1].StartupProbe.FailureThreshold = 100000 }, false},
		{"a service less", func(s *corev1.PodSpec) { s.InitContainers = s.InitContainers[:1] }, false},
		{"a check that never starts", func(s *corev1.PodSpec) { s.InitContainers[0].StartupProbe.InitialDelaySeconds = 1 << 30 }, false},
		{"a hook", func(s *corev1.PodSpec) {
			s.InitContainers[0].Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"evil"}}}}
		}, false},
		{"a liveness probe on the step", func(s *corev1.PodSpec) { s.Containers[0].LivenessProbe = &corev1.Probe{} }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			live := rendered.DeepCopy()
			c.edit(live)
			if why := samePodSpec(live, rendered); (why == "") != c.ok {
				t.Errorf("samePodSpec = %q, want it accepted: %v", why, c.ok)
			}
		})
	}
}
