package render

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/pipeline"
)

func mustList(s string) corev1.ResourceList {
	l, err := ParseResourceList(s)
	if err != nil {
		panic(err)
	}
	return l
}

func parsed(t *testing.T, file string) *pipeline.Pipeline {
	t.Helper()
	def, err := pipeline.Parse([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	return &def.Pipeline
}

var resourceCfg = Config{StepResources: corev1.ResourceRequirements{
	Requests: mustList("cpu=100m,memory=128Mi"), Limits: mustList("memory=2Gi"),
}, MaxStepResources: mustList("cpu=4,memory=8Gi")}

func TestStepResources(t *testing.T) {
	cases := []struct {
		name                  string
		pipelineRes, stepRes  string
		wantRequests, wantLim string
	}{
		{"the operator's defaults", "", "", "cpu=100m,memory=128Mi", "memory=2Gi"},
		{"the pipeline's default overrides per resource", "{cpu: 250m}", "", "cpu=250m,memory=128Mi", "memory=2Gi"},
		{"the step overrides the pipeline", "{cpu: 250m, memory: 256Mi}", "{memory: 1Gi}", "cpu=250m,memory=1Gi", "memory=2Gi"},
		{"a step limit applies", "", "{limits: {cpu: '2'}}", "cpu=100m,memory=128Mi", "cpu=2,memory=2Gi"},
		{"a request above the default limit raises that limit", "", "{memory: 4Gi}", "cpu=100m,memory=4Gi", "memory=4Gi"},
		{"a limit below the default request lowers that request", "", "{limits: {memory: 64Mi}}", "cpu=100m,memory=64Mi", "memory=64Mi"},
		{"the step's limit wins over the pipeline's request", "{memory: 1Gi}", "{limits: {memory: 512Mi}}", "cpu=100m,memory=512Mi", "memory=512Mi"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := "name: t\nsteps:\n- name: s\n  commands: [x]\n"
			if tc.stepRes != "" {
				file += "  resources: " + tc.stepRes + "\n"
			}
			if tc.pipelineRes != "" {
				file += "resources: " + tc.pipelineRes + "\n"
			}
			got := StepResources(parsed(t, file), 0, resourceCfg)
			if !equalResources(got.Requests, mustList(tc.wantRequests)) || !equalResources(got.Limits, mustList(tc.wantLim)) {
				t.Errorf("requests %v, limits %v; want %s / %s", got.Requests, got.Limits, tc.wantRequests, tc.wantLim)
			}
			if err := CheckStepResources(parsed(t, file), resourceCfg); err != nil {
				t.Errorf("CheckStepResources: %v", err)
			}
		})
	}
}

func TestCheckStepResources(t *testing.T) {
	cases := []struct {
		name, file, want string
	}{
		{"a step request over the maximum", "name: t\nsteps:\n- name: a\n  commands: [x]\n- name: big\n  commands: [x]\n  resources: {memory: 64Gi}\n",
			`steps[1].resources: the memory request 64Gi of step "big" is above the operator's maximum of 8Gi (--max-step-resources) (line 7)`},
		{"a limit over the maximum", "name: t\nsteps:\n- name: a\n  commands: [x]\n  resources: {limits: {cpu: '16'}}\n",
			`steps[0].resources: the cpu limit 16 of step "a" is above the operator's maximum of 4 (--max-step-resources) (line 5)`},
		{"the pipeline's default over the maximum", "name: t\nsteps:\n- name: a\n  commands: [x]\nresources: {cpu: '8'}\n",
			`resources: the cpu request 8 of step "a" is above the operator's maximum of 4 (--max-step-resources) (line 5)`},
		{"a finally step", "name: t\nsteps:\n- name: a\n  commands: [x]\nfinally:\n- name: f\n  commands: [x]\n  resources: {memory: 9Gi}\n",
			`finally[0].resources: the memory request 9Gi of step "f" is above the operator's maximum of 8Gi (--max-step-resources) (line 8)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckStepResources(parsed(t, tc.file), resourceCfg)
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v\nwant %s", err, tc.want)
			}
			// Without a maximum nothing is refused.
			if err := CheckStepResources(parsed(t, tc.file), Config{}); err != nil {
				t.Errorf("no maximum: %v", err)
			}
		})
	}
}

func TestPeakRequests(t *testing.T) {
	const oneToFourToOne = `name: t
steps:
- {name: a, commands: [x]}
- {name: b1, dependsOn: [a], commands: [x], resources: {cpu: '1'}}
- {name: b2, dependsOn: [a], commands: [x], resources: {cpu: '1'}}
- {name: b3, dependsOn: [a], commands: [x], resources: {cpu: '1'}}
- {name: b4, dependsOn: [a], commands: [x], resources: {cpu: '1', memory: 1Gi}}
- {name: c, dependsOn: [b1, b2, b3, b4], commands: [x], resources: {cpu: '3'}}
`
	cases := []struct {
		name, file  string
		maxParallel int
		skip        []bool
		want        string
	}{
		{"a chain needs its largest step", "name: t\nsteps:\n- {name: a, commands: [x]}\n- {name: b, commands: [x], resources: {cpu: '2'}}\n- {name: c, commands: [x]}\n", 4,
			nil, "cpu=2,memory=128Mi"},
		{"a level of four needs their sum", oneToFourToOne, 0, nil, "cpu=4,memory=1408Mi"},
		{"max parallel bounds the sum", oneToFourToOne, 2, nil, "cpu=3,memory=1152Mi"},
		{"steps that do not run need nothing", oneToFourToOne, 0, []bool{true, true, true, false, false, true}, "cpu=2,memory=1152Mi"},
		{"nothing runs", oneToFourToOne, 0, []bool{true, true, true, true, true, true}, ""},
		{"a step alone beside a chain", "name: t\nsteps:\n- {name: a, commands: [x], resources: {cpu: '1'}}\n- {name: b, commands: [x], resources: {cpu: '2'}}\n- {name: d, dependsOn: [], commands: [x], resources: {cpu: 500m}}\n", 4,
			nil, "cpu=2500m,memory=256Mi"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := PeakRequests(parsed(t, tc.file), resourceCfg, tc.maxParallel, tc.skip)
			if !equalResources(got, mustList(tc.want)) {
				t.Errorf("got %v, want %s", got, tc.want)
			}
		})
	}
}

func TestCloneReservesThePeak(t *testing.T) {
	cfg := testCfg
	cfg.CloneResources = corev1.ResourceRequirements{Requests: mustList("cpu=100m,memory=64Mi"), Limits: mustList("memory=512Mi")}
	got := RenderCloneJob(testRun(), cfg, mustList("cpu=4,memory=1Gi")).Spec.Template.Spec.Containers[0].Resources
	if !equalResources(got.Requests, mustList("cpu=4,memory=1Gi")) || !equalResources(got.Limits, mustList("memory=1Gi")) {
		t.Errorf("clone resources %v / %v", got.Requests, got.Limits)
	}
	got = RenderCloneJob(testRun(), cfg, mustList("cpu=50m")).Spec.Template.Spec.Containers[0].Resources
	if !equalResources(got.Requests, mustList("cpu=100m,memory=64Mi")) || !equalResources(got.Limits, mustList("memory=512Mi")) {
		t.Errorf("a smaller reserve changed the clone: %v / %v", got.Requests, got.Limits)
	}
}

func TestNeedsOneNode(t *testing.T) {
	for modes, want := range map[string]bool{"ReadWriteOnce": true, "ReadWriteOncePod": true, "ReadWriteMany": false, "ReadWriteOnce,ReadWriteMany": false} {
		run := testRun()
		for _, m := range strings.Split(modes, ",") {
			run.Spec.Workspace.AccessModes = append(run.Spec.Workspace.AccessModes, corev1.PersistentVolumeAccessMode(m))
		}
		if got := NeedsOneNode(run); got != want {
			t.Errorf("%s: %v", modes, got)
		}
	}
}

func TestRenderFinallyStep(t *testing.T) {
	p := parsed(t, "name: t\nsteps:\n- {name: a, commands: [x]}\nfinally:\n- {name: notify, image: alpine:3, commands: [./notify]}\n")
	job, err := RenderStepJob(testRun(), p, 1, "", testCfg)
	if err != nil {
		t.Fatal(err)
	}
	if job.Name != StepJobName(testRun(), 1, "notify") || job.Labels[v1alpha1.LabelStepIndex] != "1" || job.Spec.Template.Spec.Containers[0].Image != "alpine:3" {
		t.Errorf("finally step Job: %s %v %s", job.Name, job.Labels, job.Spec.Template.Spec.Containers[0].Image)
	}
	if _, err := RenderStepJob(testRun(), p, 2, "", testCfg); err == nil {
		t.Error("index past the finally steps rendered")
	}
}
