package render

import (
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/pipeline"
)

const secretStepFile = `name: deploy
steps:
- name: build
  commands: [make]
- name: deploy
  secrets:
  - name: deploy-token
    env: {TOKEN: token}
  - name: ca
    files: [ca.crt, extra.pem]
  commands: [./deploy.sh]
`

func secretStepJob(t *testing.T) *batchv1.Job {
	t.Helper()
	def, err := pipeline.Parse([]byte(secretStepFile))
	if err != nil {
		t.Fatal(err)
	}
	run := testRun()
	run.Spec.Secrets = []v1alpha1.RunSecret{{Name: "deploy-token"}, {Name: "ca"}}
	job, err := RenderStepJob(run, &def.Pipeline, 1, "", testCfg)
	if err != nil {
		t.Fatal(err)
	}
	return job
}

func TestStepWithSecrets(t *testing.T) {
	spec := secretStepJob(t).Spec.Template.Spec
	c := spec.Containers[0]
	if want := []string{"/flowci-bin/flowci-mask", "run", "--", "/bin/sh", "-c"}; !slices.Equal(c.Command[:5], want) {
		t.Errorf("command starts %q, want %q: the script must run under the mask", c.Command[:5], want)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if ref := env["TOKEN"].ValueFrom; ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "deploy-token" || ref.SecretKeyRef.Key != "token" {
		t.Errorf("TOKEN = %+v, want a reference to deploy-token/token (the value never passes through the operator)", env["TOKEN"])
	}
	if env["TOKEN"].Value != "" {
		t.Errorf("TOKEN has a literal value %q", env["TOKEN"].Value)
	}
	if got := env["FLOWCI_MASK_ENV"].Value; got != "TOKEN" {
		t.Errorf("FLOWCI_MASK_ENV = %q, want TOKEN", got)
	}
	if got := env["FLOWCI_MASK_DIRS"].Value; got != "/var/run/flowci/secrets/ca" {
		t.Errorf("FLOWCI_MASK_DIRS = %q", got)
	}
	var mounted bool
	for _, m := range c.VolumeMounts {
		if m.MountPath == "/var/run/flowci/secrets/ca" {
			mounted = m.ReadOnly
		}
	}
	if !mounted {
		t.Errorf("the ca Secret is not mounted read-only at /var/run/flowci/secrets/ca: %+v", c.VolumeMounts)
	}
	var items []string
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			if v.Secret.SecretName != "ca" || *v.Secret.DefaultMode != 0o440 {
				t.Errorf("secret volume %+v", v.Secret)
			}
			for _, it := range v.Secret.Items {
				items = append(items, it.Key)
			}
		}
	}
	if !slices.Equal(items, []string{"ca.crt", "extra.pem"}) {
		t.Errorf("mounted keys %q, want only the two asked for", items)
	}
	if len(spec.InitContainers) != 1 || spec.InitContainers[0].Image != testCfg.CloneImage ||
		!slices.Equal(spec.InitContainers[0].Command, []string{MaskBinary, "install", "/flowci-bin/flowci-mask"}) {
		t.Errorf("init containers %+v, want one that installs the mask from the operator's image", spec.InitContainers)
	}
}

// TestUnexposedSecretIsNeverRendered: even past the scheduler, a Job never names a
// Secret its run does not expose.
func TestUnexposedSecretIsNeverRendered(t *testing.T) {
	def, err := pipeline.Parse([]byte(secretStepFile))
	if err != nil {
		t.Fatal(err)
	}
	run := testRun()
	run.Spec.Secrets = []v1alpha1.RunSecret{{Name: "deploy-token"}}
	if _, err := RenderStepJob(run, &def.Pipeline, 1, "", testCfg); err == nil || !strings.Contains(err.Error(), `Secret "ca"`) {
		t.Errorf("rendered a step whose Secret ca is not exposed: %v", err)
	}
}

// TestStepWithoutSecretsIsUnchanged: a step that asks for nothing gets no mask, no init
// container and no Secret volume, whatever its run exposes.
func TestStepWithoutSecretsIsUnchanged(t *testing.T) {
	def, err := pipeline.Parse([]byte(secretStepFile))
	if err != nil {
		t.Fatal(err)
	}
	run := testRun()
	run.Spec.Secrets = []v1alpha1.RunSecret{{Name: "deploy-token"}}
	job, err := RenderStepJob(run, &def.Pipeline, 0, "", testCfg)
	if err != nil {
		t.Fatal(err)
	}
	spec := job.Spec.Template.Spec
	for _, e := range spec.Containers[0].Env {
		if strings.HasPrefix(e.Name, "FLOWCI_SECRETS") || strings.HasPrefix(e.Name, "FLOWCI_MASK") {
			t.Errorf("a step without secrets has %s", e.Name)
		}
	}
	if len(spec.InitContainers) != 0 || len(spec.Volumes) != 1 || spec.Containers[0].Command[0] != "/bin/sh" {
		t.Errorf("a step without secrets changed: init %d, volumes %d, command %q", len(spec.InitContainers), len(spec.Volumes), spec.Containers[0].Command[0])
	}
}

func TestExposedSecrets(t *testing.T) {
	secrets := []v1alpha1.TriggerSecret{
		{Name: "all"},
		{Name: "deploy", Branches: []string{"main"}, Events: []v1alpha1.Event{v1alpha1.EventPush}},
		{Name: "release", Branches: []string{"release/*"}},
		{Name: "nightly", Events: []v1alpha1.Event{v1alpha1.EventSchedule}},
		{Name: "bad-glob", Branches: []string{"[main"}},
	}
	tests := []struct {
		branch string
		event  v1alpha1.Event
		want   []string
	}{
		{"main", v1alpha1.EventPush, []string{"all", "deploy"}},
		{"main", v1alpha1.EventSchedule, []string{"all", "nightly"}},
		{"feature", v1alpha1.EventPush, []string{"all"}},
		{"release/1.0", v1alpha1.EventPush, []string{"all", "release"}},
		{"release/1.0/x", v1alpha1.EventPush, []string{"all"}},
	}
	for _, tt := range tests {
		var got []string
		for _, s := range ExposedSecrets(secrets, tt.branch, tt.event) {
			got = append(got, s.Name)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s %s: exposed %q, want %q", tt.event, tt.branch, got, tt.want)
		}
	}
}

// TestTriggeredRunExposesFilteredSecrets: a schedule's run of main gets the schedule's
// Secrets and not the push-only deploy token.
func TestTriggeredRunExposesFilteredSecrets(t *testing.T) {
	tr := &v1alpha1.PipelineTrigger{}
	tr.Name, tr.Namespace, tr.UID = "t", "ns", "uid"
	tr.Spec.Template.Secrets = []v1alpha1.TriggerSecret{
		{Name: "deploy", Branches: []string{"main"}, Events: []v1alpha1.Event{v1alpha1.EventPush}},
		{Name: "nightly", Events: []v1alpha1.Event{v1alpha1.EventSchedule}},
	}
	push := TriggeredRun(tr, "a", "main", "0123456789012345678901234567890123456789", "")
	sched := TriggeredRun(tr, "b", "main", "0123456789012345678901234567890123456789", "nightly")
	if got := push.Spec.SecretNames(); !slices.Equal(got, []string{"deploy"}) || v1alpha1.EventOf(push) != v1alpha1.EventPush {
		t.Errorf("push run exposes %q (event %s)", got, v1alpha1.EventOf(push))
	}
	if got := sched.Spec.SecretNames(); !slices.Equal(got, []string{"nightly"}) || v1alpha1.EventOf(sched) != v1alpha1.EventSchedule {
		t.Errorf("scheduled run exposes %q (event %s)", got, v1alpha1.EventOf(sched))
	}
}

// TestPullRequestRun: a fork's run (untrusted) has no Secrets whatever the template
// says; the repository's own gets the Secrets listed for pull_request only (an empty
// events list means push and schedule); neither gets the ServiceAccount. Either forms a
// concurrency group of its own, apart from its target branch's.
func TestPullRequestRun(t *testing.T) {
	tr := &v1alpha1.PipelineTrigger{}
	tr.Name, tr.Namespace, tr.UID = "app", "ns", "uid"
	tr.Spec.RepoURL = "https://git.example/org/app.git"
	tr.Spec.Template.ServiceAccountName = "deployer"
	tr.Spec.Template.Secrets = []v1alpha1.TriggerSecret{
		{Name: "everyday"},
		{Name: "deploy", Events: []v1alpha1.Event{v1alpha1.EventPush}},
		{Name: "test-db", Events: []v1alpha1.Event{v1alpha1.EventPullRequest}},
	}
	const head = "0123456789012345678901234567890123456789"
	name := PullRequestRunName(tr, 12, head)
	if !strings.HasPrefix(name, "app-pr12-0123456-") || name != PullRequestRunName(tr, 12, head) || len(name) > 63 {
		t.Errorf("name %q", name)
	}
	own := PullRequestRun(tr, name, 12, "main", head, true)
	fork := PullRequestRun(tr, name, 12, "main", head, false)
	if got := own.Spec.SecretNames(); !slices.Equal(got, []string{"test-db"}) || own.Spec.ServiceAccountName != "" {
		t.Errorf("trusted: secrets %q, ServiceAccount %q", got, own.Spec.ServiceAccountName)
	}
	if len(fork.Spec.Secrets) != 0 || fork.Spec.ServiceAccountName != "" {
		t.Errorf("untrusted: secrets %v, ServiceAccount %q", fork.Spec.Secrets, fork.Spec.ServiceAccountName)
	}
	if v1alpha1.EventOf(fork) != v1alpha1.EventPullRequest || fork.Spec.Branch != "main" || fork.Spec.Revision != head {
		t.Errorf("event %s, branch %q, revision %q", v1alpha1.EventOf(fork), fork.Spec.Branch, fork.Spec.Revision)
	}
	// A rerun keeps the pull request and its trust: a fork's run never turns into a
	// push of the target branch with its Secrets.
	forkRerun := Rerun(tr, "again", fork, head)
	if forkRerun.Labels[v1alpha1.LabelPullRequest] != "12" || len(forkRerun.Spec.Secrets) != 0 || forkRerun.Labels[v1alpha1.LabelUntrusted] != "true" {
		t.Errorf("a fork's rerun: labels %v, secrets %v", forkRerun.Labels, forkRerun.Spec.Secrets)
	}
	if got := Rerun(tr, "again", own, head).Spec.SecretNames(); !slices.Equal(got, []string{"test-db"}) {
		t.Errorf("the repository's own rerun: secrets %q", got)
	}
	branchRun := TriggeredRun(tr, "b", "main", head, "")
	if RunGroupKey(own) == RunGroupKey(branchRun) || RunGroupKey(own) != RunGroupKey(fork) {
		t.Error("a pull request's runs share a group with each other and not with their target branch's")
	}
}
