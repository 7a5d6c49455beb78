package render

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/pipeline"
)

func TestStepWithArtifacts(t *testing.T) {
	def, err := pipeline.Parse([]byte("name: a\nsteps:\n- name: build\n  artifacts: {paths: [bin/app], when: always}\n  secrets: [{name: tok, env: {T: t}}]\n  commands: [make]\n- name: test\n  commands: [make test]\n"))
	if err != nil {
		t.Fatal(err)
	}
	withArchive := testCfg
	withArchive.Archive = ArchiveConfig{URL: "https://flow-ci-archive.flow-ci-system.svc", CA: "-----BEGIN CERTIFICATE-----\n$(x)\n"}
	tests := []struct {
		name      string
		cfg       Config
		step      int
		wrapped   bool
		token     bool
		archiveCA string
	}{
		{"with an archive", withArchive, 0, true, true, "-----BEGIN CERTIFICATE-----\n$$(x)\n"},
		{"without an archive the step still says why nothing is kept", testCfg, 0, true, false, ""},
		{"a step that keeps nothing is not wrapped", withArchive, 1, false, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			run := testRun()
			run.Spec.Secrets = nil
			if tc.step == 0 {
				run.Spec.Secrets = []v1alpha1.RunSecret{{Name: "tok"}}
			}
			job, err := RenderStepJob(run, &def.Pipeline, tc.step, "", tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			spec := job.Spec.Template.Spec
			c := spec.Containers[0]
			env := map[string]string{}
			for _, e := range c.Env {
				env[e.Name] = e.Value
			}
			if got := slices.Contains(c.Command, "/flowci-bin/flowci-mask"); got != tc.wrapped {
				t.Errorf("wrapped = %v, want %v: %q", got, tc.wrapped, c.Command)
			}
			if n := len(spec.InitContainers); tc.wrapped && n != 1 {
				t.Errorf("%d init containers, want one wrapper copy for secrets and artifacts together", n)
			}
			if tc.wrapped && env["FLOWCI_ARTIFACTS"] != `{"paths":["bin/app"],"when":"always"}` {
				t.Errorf("FLOWCI_ARTIFACTS = %q", env["FLOWCI_ARTIFACTS"])
			}
			var token *corev1.ServiceAccountTokenProjection
			for _, v := range spec.Volumes {
				if v.Projected != nil {
					token = v.Projected.Sources[0].ServiceAccountToken
				}
			}
			if (token != nil) != tc.token {
				t.Fatalf("archive token volume = %+v, want one: %v", token, tc.token)
			}
			if token != nil && token.Audience != ArchiveAudience {
				t.Errorf("token audience %q: a token the API server accepts would give the step API access", token.Audience)
			}
			if env["FLOWCI_ARCHIVE_CA"] != tc.archiveCA {
				t.Errorf("FLOWCI_ARCHIVE_CA = %q, want %q (escaped for the kubelet)", env["FLOWCI_ARCHIVE_CA"], tc.archiveCA)
			}
			if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
				t.Error("the step got an API token")
			}
		})
	}
}
