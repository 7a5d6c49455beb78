package render

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/pipeline"
)

const (
	testUID    = "6f1c2a6e-6a3b-4b8e-9d1e-2f0c9a7b5d43"
	testCommit = "0123456789abcdef0123456789abcdef01234567"
	testRepo   = "https://git.example.com/team/app.git"
)

var testCfg = Config{DefaultStepImage: "busybox:1.37", CloneImage: "ghcr.io/flow-ci/flow-ci:v0.1.0"}

func testRun() *v1alpha1.PipelineRun {
	return &v1alpha1.PipelineRun{
		ObjectMeta: metav1.ObjectMeta{Name: "build-1", Namespace: "ci", UID: testUID},
		Spec:       v1alpha1.PipelineRunSpec{RepoURL: testRepo, Branch: "main"},
		Status:     v1alpha1.PipelineRunStatus{Commit: testCommit, Branch: "main"},
	}
}

// seedPipeline is what the parser returns for the original flow-ci format.
func seedPipeline() *pipeline.Pipeline {
	return &pipeline.Pipeline{Version: 1, Name: "My First Pipeline", Steps: []pipeline.Step{
		{Name: "Download dependencies", Commands: []string{"go mod download"}},
	}}
}

var owner = []metav1.OwnerReference{{
	APIVersion:         "ci.flowci.dev/v1alpha1",
	Kind:               "PipelineRun",
	Name:               "build-1",
	UID:                testUID,
	Controller:         new(true),
	BlockOwnerDeletion: new(true),
}}

func wantLabels(component string, extra ...string) map[string]string {
	l := map[string]string{
		"flowci.dev/pipelinerun":     "build-1",
		"flowci.dev/pipelinerun-uid": testUID,
		"flowci.dev/component":       component,
	}
	for i := 0; i < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return l
}

// runAnnotation maps a pod back to its run, whose name v1alpha1.LabelRun may shorten.
var runAnnotation = map[string]string{"flowci.dev/pipelinerun-name": "build-1"}

var restrictedPod = &corev1.PodSecurityContext{
	RunAsNonRoot:        new(true),
	RunAsUser:           new(int64(65532)),
	RunAsGroup:          new(int64(65532)),
	FSGroup:             new(int64(65532)),
	FSGroupChangePolicy: new(corev1.FSGroupChangeOnRootMismatch),
	SeccompProfile:      &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
}

func restrictedContainer(readOnlyRoot bool) *corev1.SecurityContext {
	sc := &corev1.SecurityContext{
		AllowPrivilegeEscalation: new(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		RunAsNonRoot:             new(true),
	}
	if readOnlyRoot {
		sc.ReadOnlyRootFilesystem = new(true)
	}
	return sc
}

var workspaceVol = corev1.Volume{Name: "workspace", VolumeSource: corev1.VolumeSource{
	PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "build-1-ws"},
}}

func TestRenderWorkspace(t *testing.T) {
	tests := []struct {
		name string
		ws   v1alpha1.WorkspaceSpec
		want corev1.PersistentVolumeClaimSpec
	}{
		{
			name: "defaults",
			want: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				VolumeMode:  new(corev1.PersistentVolumeFilesystem),
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceStorage: resource.MustParse("1Gi"),
				}},
			},
		},
		{
			name: "everything set",
			ws: v1alpha1.WorkspaceSpec{
				Size:             new(resource.MustParse("20Gi")),
				StorageClassName: new("fast"),
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			},
			want: corev1.PersistentVolumeClaimSpec{
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
				StorageClassName: new("fast"),
				VolumeMode:       new(corev1.PersistentVolumeFilesystem),
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceStorage: resource.MustParse("20Gi"),
				}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := testRun()
			run.Spec.Workspace = tt.ws
			want := &corev1.PersistentVolumeClaim{
				ObjectMeta: metav1.ObjectMeta{Name: "build-1-ws", Namespace: "ci", Labels: wantLabels("workspace"), OwnerReferences: owner},
				Spec:       tt.want,
			}
			if diff := cmp.Diff(want, RenderWorkspace(run)); diff != "" {
				t.Errorf("RenderWorkspace (-want +got):\n%s", diff)
			}
		})
	}
}

// wantSeedStepJob is the Job of the seed pipeline's only step.
func wantSeedStepJob() *batchv1.Job {
	labels := wantLabels("step", "flowci.dev/step-index", "0", "flowci.dev/step", "Download-dependencies")
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "build-1-0-download-dependencie", Namespace: "ci", Labels: labels, OwnerReferences: owner},
		Spec: batchv1.JobSpec{
			BackoffLimit: new(int32(0)),
			PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				Action:          batchv1.PodFailurePolicyActionIgnore,
				OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}},
			}}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      wantLabels("step", "flowci.dev/step-index", "0", "flowci.dev/step", "Download-dependencies"),
					Annotations: runAnnotation,
				},
				Spec: corev1.PodSpec{
					RestartPolicy:                corev1.RestartPolicyNever,
					AutomountServiceAccountToken: new(false),
					EnableServiceLinks:           new(false),
					SecurityContext:              restrictedPod,
					Containers: []corev1.Container{{
						Name:       "step",
						Image:      "busybox:1.37",
						Command:    []string{"/bin/sh", "-c", "set -e\nprintf '+ %s\\n' 'go mod download'\ngo mod download\n\n"},
						WorkingDir: "/workspace/src",
						Env: []corev1.EnvVar{
							{Name: "CI", Value: "true"},
							{Name: "HOME", Value: "/workspace/home"},
							{Name: "FLOWCI_RUN", Value: "build-1"},
							{Name: "FLOWCI_REPO", Value: testRepo},
							{Name: "FLOWCI_BRANCH", Value: "main"},
							{Name: "FLOWCI_COMMIT", Value: testCommit},
							{Name: "FLOWCI_STEP", Value: "Download dependencies"},
						},
						VolumeMounts:             []corev1.VolumeMount{{Name: "workspace", MountPath: "/workspace"}},
						TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
						SecurityContext:          restrictedContainer(false),
					}},
					Volumes: []corev1.Volume{workspaceVol},
				},
			},
		},
	}
}

func TestRenderStepJob(t *testing.T) {
	tests := []struct {
		name     string
		run      func(*v1alpha1.PipelineRun)
		pipeline *pipeline.Pipeline
		index    int
		nodeName string
		cfg      *Config
		want     func(*batchv1.Job)
	}{
		{name: "seed format uses the default image", pipeline: seedPipeline()},
		{
			name:     "pull policy",
			pipeline: seedPipeline(),
			cfg:      &Config{DefaultStepImage: testCfg.DefaultStepImage, ImagePullPolicy: corev1.PullAlways},
			want:     func(j *batchv1.Job) { j.Spec.Template.Spec.Containers[0].ImagePullPolicy = corev1.PullAlways },
		},
		{
			name:     "pipeline image",
			pipeline: &pipeline.Pipeline{Image: "golang:1.26", Steps: seedPipeline().Steps},
			want:     func(j *batchv1.Job) { j.Spec.Template.Spec.Containers[0].Image = "golang:1.26" },
		},
		{
			name:     "service account mounts its token",
			run:      func(r *v1alpha1.PipelineRun) { r.Spec.ServiceAccountName = "deployer" },
			pipeline: seedPipeline(),
			want: func(j *batchv1.Job) {
				j.Spec.Template.Spec.ServiceAccountName = "deployer"
				j.Spec.Template.Spec.AutomountServiceAccountToken = nil
			},
		},
		{
			name:     "pinned to the clone's node by name",
			pipeline: seedPipeline(),
			nodeName: "worker-2.example.internal",
			want: func(j *batchv1.Job) {
				j.Spec.Template.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
					RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
						MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"worker-2.example.internal"}}},
					}}},
				}}
			},
		},
		{
			name: "step with image, env, timeout, working dir and retries",
			pipeline: &pipeline.Pipeline{
				Image: "golang:1.26",
				Env:   []pipeline.EnvVar{{Name: "CI", Value: "yes"}, {Name: "FLOWCI_RUN", Value: "forged"}, {Name: "GOFLAGS", Value: "-mod=mod"}, {Name: "ZED", Value: "pipeline"}},
				Steps: []pipeline.Step{
					{Name: "Download dependencies", Commands: []string{"go mod download"}},
					{
						Name:       "Unit Tests",
						Image:      "registry.example.com/go:1.26",
						Env:        []pipeline.EnvVar{{Name: "GOFLAGS", Value: "-mod=readonly"}, {Name: "HOME", Value: "/tmp"}, {Name: "PRICE", Value: "$5 or $(CI)"}},
						Commands:   []string{"go vet ./...", "go test \\\n  ./...\n"},
						Timeout:    90*time.Minute + 500*time.Millisecond,
						WorkingDir: "app/cmd",
						Retries:    3,
					},
				},
			},
			index: 1,
			want: func(j *batchv1.Job) {
				labels := wantLabels("step", "flowci.dev/step-index", "1", "flowci.dev/step", "Unit-Tests")
				j.Name = "build-1-1-unit-tests"
				j.Labels = labels
				j.Spec.Template.Labels = wantLabels("step", "flowci.dev/step-index", "1", "flowci.dev/step", "Unit-Tests")
				j.Spec.BackoffLimit = new(int32(3))
				j.Spec.ActiveDeadlineSeconds = new(int64(5401))
				c := &j.Spec.Template.Spec.Containers[0]
				c.Image = "registry.example.com/go:1.26"
				c.WorkingDir = "/workspace/src/app/cmd"
				c.Command[2] = "set -e\n" +
					"printf '+ %s\\n' 'go vet ./...'\ngo vet ./...\n\n" +
					"printf '+ %s\\n' 'go test \\\n  ./...'\ngo test \\\n  ./...\n\n\n"
				c.Env = []corev1.EnvVar{
					{Name: "CI", Value: "yes"},
					{Name: "HOME", Value: "/tmp"},
					{Name: "FLOWCI_RUN", Value: "build-1"},
					{Name: "FLOWCI_REPO", Value: testRepo},
					{Name: "FLOWCI_BRANCH", Value: "main"},
					{Name: "FLOWCI_COMMIT", Value: testCommit},
					{Name: "FLOWCI_STEP", Value: "Unit Tests"},
					{Name: "GOFLAGS", Value: "-mod=readonly"},
					{Name: "PRICE", Value: "$$5 or $$(CI)"},
					{Name: "ZED", Value: "pipeline"},
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := testRun()
			if tt.run != nil {
				tt.run(run)
			}
			want := wantSeedStepJob()
			if tt.want != nil {
				tt.want(want)
			}
			cfg := testCfg
			if tt.cfg != nil {
				cfg = *tt.cfg
			}
			got, err := RenderStepJob(run, tt.pipeline, tt.index, tt.nodeName, cfg)
			if err != nil {
				t.Fatalf("RenderStepJob: %v", err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("RenderStepJob (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRenderStepJobErrors(t *testing.T) {
	tests := []struct {
		name     string
		pipeline *pipeline.Pipeline
		index    int
		cfg      Config
		want     string
	}{
		{"no image anywhere", seedPipeline(), 0, Config{}, `render step "Download dependencies": no image`},
		{"index past the end", seedPipeline(), 1, testCfg, "render step 1: no such step"},
		{"negative index", seedPipeline(), -1, testCfg, "render step -1: no such step"},
		{"nil pipeline", nil, 0, testCfg, "render step 0: no such step"},
		{"working dir escapes", &pipeline.Pipeline{Steps: []pipeline.Step{{Name: "x", Commands: []string{"true"}, WorkingDir: "../.."}}}, 0, testCfg,
			`render step "x": working directory "../.." is outside the checkout`},
		// A 256 KiB file of quotes: each ' is quoted as '\'' and echoed, six-fold.
		{"script too large", &pipeline.Pipeline{Steps: []pipeline.Step{{Name: "q", Commands: quotes(4, 60<<10)}}}, 0, testCfg,
			`render step "q": its script is 1228891 bytes once quoted and echoed, more than 262144`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job, err := RenderStepJob(testRun(), tt.pipeline, tt.index, "", tt.cfg)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("RenderStepJob = %v, %v; want error starting with %q", job, err, tt.want)
			}
		})
	}
}

func quotes(n, size int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = strings.Repeat("'", size)
	}
	return out
}
