package render

import (
	"reflect"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/pipeline"
)

const servicesStepFile = `name: s
steps:
- name: test
  secrets:
  - name: deploy-token
    env: {TOKEN: token}
  services:
  - name: db
    image: postgres:16
    env: {POSTGRES_PASSWORD: "$(x)"}
    ports: [5432]
    resources: {cpu: 200m, memory: 256Mi, limits: {memory: 256Mi}}
  - name: cache
    image: redis:7
    command: [redis-server, "$(HOME)"]
    ready: {command: [redis-cli, ping, "$(x)"], timeout: 7s}
  resources: {cpu: 500m, memory: 1Gi, limits: {memory: 1Gi}}
  commands: [go test ./...]
`

func servicesStep(t *testing.T) (*pipeline.Pipeline, *batchv1.Job) {
	t.Helper()
	def, err := pipeline.Parse([]byte(servicesStepFile))
	if err != nil {
		t.Fatal(err)
	}
	run := testRun()
	run.Spec.Secrets = []v1alpha1.RunSecret{{Name: "deploy-token"}}
	job, err := RenderStepJob(run, &def.Pipeline, 0, "", testCfg)
	if err != nil {
		t.Fatal(err)
	}
	return &def.Pipeline, job
}

// TestRenderServices: each service is a native sidecar after the mask's installer,
// with its readiness check as a startup probe bounded by its timeout, its own env
// (escaped for the kubelet) and resources, and neither the workspace nor a secret.
func TestRenderServices(t *testing.T) {
	_, job := servicesStep(t)
	spec := job.Spec.Template.Spec
	var names []string
	for _, c := range spec.InitContainers {
		names = append(names, c.Name)
	}
	if want := []string{"flowci-mask", "service-db", "service-cache"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("init containers %q, want %q", names, want)
	}
	db, cache := spec.InitContainers[1], spec.InitContainers[2]
	for _, c := range []corev1.Container{db, cache} {
		if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			t.Errorf("%s: restartPolicy %v, want Always (a native sidecar)", c.Name, c.RestartPolicy)
		}
		if len(c.VolumeMounts) != 0 || len(c.EnvFrom) != 0 {
			t.Errorf("%s mounts %v, envFrom %v: services get neither the workspace nor secrets", c.Name, c.VolumeMounts, c.EnvFrom)
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil {
				t.Errorf("%s: env %s from %v", c.Name, e.Name, e.ValueFrom)
			}
		}
	}
	if got := db.StartupProbe; got == nil || got.TCPSocket == nil || got.TCPSocket.Port != intstr.FromInt32(5432) || got.FailureThreshold != 30 || got.PeriodSeconds != 2 {
		t.Errorf("db probe %+v: want tcp 5432 every 2s, 30 times (the default minute)", got)
	}
	if got := cache.StartupProbe; got == nil || got.Exec == nil || !reflect.DeepEqual(got.Exec.Command, []string{"redis-cli", "ping", "$$(x)"}) || got.FailureThreshold != 4 {
		t.Errorf("cache probe %+v: want the command, 4 times (7s rounded up to 2s periods)", got)
	}
	if !reflect.DeepEqual(db.Env, []corev1.EnvVar{{Name: "CI", Value: "true"}, {Name: "POSTGRES_PASSWORD", Value: "$$(x)"}}) {
		t.Errorf("db env %v", db.Env)
	}
	if !reflect.DeepEqual(db.Ports, []corev1.ContainerPort{{ContainerPort: 5432, Protocol: corev1.ProtocolTCP}}) || db.Resources.Requests.Cpu().String() != "200m" {
		t.Errorf("db ports %v, resources %v", db.Ports, db.Resources)
	}
	if !reflect.DeepEqual(cache.Command, []string{"redis-server", "$$(HOME)"}) || cache.Image != "redis:7" {
		t.Errorf("cache %q %q", cache.Image, cache.Command)
	}
}

// TestServicesCountInThePeak: the pod's requests are the step's plus its services',
// so the peak and the maximum see what the node must hold.
func TestServicesCountInThePeak(t *testing.T) {
	p, _ := servicesStep(t)
	cfg := testCfg
	cfg.StepResources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}
	res := StepPodResources(p, 0, cfg)
	if got := res.Requests.Cpu().String(); got != "800m" { // 500m + 200m + 100m (the default)
		t.Errorf("pod cpu request %s, want 800m", got)
	}
	if got := res.Requests.Memory().String(); got != "1280Mi" { // 1Gi + 256Mi; the cache has no memory request
		t.Errorf("pod memory request %s, want 1280Mi", got)
	}
	if _, ok := res.Limits[corev1.ResourceMemory]; ok {
		t.Errorf("pod memory limit %v: the cache has none, so the pod has none", res.Limits)
	}
	if peak := PeakRequests(p, cfg, 0, nil); peak.Cpu().String() != "800m" {
		got := peak.Cpu().String()
		t.Errorf("peak cpu %s, want 800m", got)
	}
	cfg.MaxStepResources = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("700m")}
	if err := CheckStepResources(p, cfg); err == nil || err.Error() != `steps[0].resources: the cpu request 800m of step "test" with its services is above the operator's maximum of 700m (--max-step-resources) (line 17)` {
		t.Errorf("CheckStepResources: %v", err)
	}
}
