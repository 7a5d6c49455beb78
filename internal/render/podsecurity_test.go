package render

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// restrictedLatest evaluates a pod template the way the PodSecurity
// admission plugin does in a namespace labelled enforce=restricted.
func restrictedLatest(t *testing.T, tmpl *corev1.PodTemplateSpec) policy.AggregateCheckResult {
	t.Helper()
	eval, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	lv := psapi.LevelVersion{Level: psapi.LevelRestricted, Version: psapi.LatestVersion()}
	return policy.AggregateCheckResults(eval.EvaluatePod(lv, &tmpl.ObjectMeta, &tmpl.Spec))
}

// renderedPods returns the pod template of every kind of pod a run creates.
func renderedPods(t *testing.T) map[string]*corev1.PodTemplateSpec {
	t.Helper()
	p := seedPipeline()
	pods := map[string]*corev1.PodTemplateSpec{}

	withSecret := testRun()
	withSecret.Spec.GitSecretRef = &v1alpha1.SecretReference{Name: "git-creds"}
	pods["clone"] = &RenderCloneJob(testRun(), testCfg, nil).Spec.Template
	pods["clone with git secret"] = &RenderCloneJob(withSecret, testCfg, nil).Spec.Template

	withSA := testRun()
	withSA.Spec.ServiceAccountName = "deployer"
	for name, run := range map[string]*v1alpha1.PipelineRun{"step": testRun(), "step with service account": withSA} {
		job, err := RenderStepJob(run, p, 0, "worker-1", testCfg)
		if err != nil {
			t.Fatal(err)
		}
		pods[name] = &job.Spec.Template
	}
	pods["step with secrets"] = &secretStepJob(t).Spec.Template
	_, withServices := servicesStep(t)
	pods["step with services"] = &withServices.Spec.Template
	hold := RenderHoldPod(testRun(), testCfg, "worker-1", corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")})
	pods["hold"] = &corev1.PodTemplateSpec{ObjectMeta: hold.ObjectMeta, Spec: hold.Spec}
	return pods
}

func TestPodsAreRestricted(t *testing.T) {
	for name, tmpl := range renderedPods(t) {
		if res := restrictedLatest(t, tmpl); !res.Allowed {
			t.Errorf("%s pod violates restricted: %s", name, res.ForbiddenReason())
		}
	}
}

// TestRestrictedCheckCatchesViolations shows the evaluator above is not
// vacuous: each weakening of a rendered pod must be refused.
func TestRestrictedCheckCatchesViolations(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*corev1.PodSpec)
	}{
		{"no seccomp profile", func(s *corev1.PodSpec) { s.SecurityContext.SeccompProfile = nil }},
		{"privilege escalation", func(s *corev1.PodSpec) { s.Containers[0].SecurityContext.AllowPrivilegeEscalation = new(true) }},
		{"capabilities kept", func(s *corev1.PodSpec) { s.Containers[0].SecurityContext.Capabilities = nil }},
		{"root", func(s *corev1.PodSpec) {
			s.SecurityContext.RunAsNonRoot = nil
			s.SecurityContext.RunAsUser = new(int64(0))
			s.Containers[0].SecurityContext.RunAsNonRoot = nil
		}},
		{"host path", func(s *corev1.PodSpec) {
			s.Volumes = append(s.Volumes, corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}})
		}},
	}
	for _, tt := range tests {
		for name, tmpl := range renderedPods(t) {
			tt.mutate(&tmpl.Spec)
			if res := restrictedLatest(t, tmpl); res.Allowed {
				t.Errorf("%s pod with %s: allowed, want refused", name, tt.name)
			}
		}
	}
}
