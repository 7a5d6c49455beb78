package render

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

func wantCloneJob() *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "build-1-clone", Namespace: "ci", Labels: wantLabels("clone"), OwnerReferences: owner},
		Spec: batchv1.JobSpec{
			BackoffLimit:          new(int32(2)),
			ActiveDeadlineSeconds: new(int64(600)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: wantLabels("clone"), Annotations: runAnnotation},
				Spec: corev1.PodSpec{
					RestartPolicy:                corev1.RestartPolicyNever,
					AutomountServiceAccountToken: new(false),
					EnableServiceLinks:           new(false),
					SecurityContext:              restrictedPod,
					Containers: []corev1.Container{{
						Name:  "clone",
						Image: "ghcr.io/flow-ci/flow-ci:v0.1.0",
						Args: []string{"clone", "--repo", testRepo, "--branch", "main", "--commit", testCommit,
							"--dest", "/workspace/src", "--home", "/workspace/home"},
						Env: []corev1.EnvVar{{Name: "HOME", Value: "/tmp"}},
						VolumeMounts: []corev1.VolumeMount{
							{Name: "workspace", MountPath: "/workspace"},
							{Name: "tmp", MountPath: "/tmp"},
						},
						TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
						SecurityContext:          restrictedContainer(true),
					}},
					Volumes: []corev1.Volume{
						workspaceVol,
						{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptrQ("64Mi")}}},
					},
				},
			},
		},
	}
}

func TestRenderCloneJob(t *testing.T) {
	tests := []struct {
		name string
		run  func(*v1alpha1.PipelineRun)
		cfg  *Config
		want func(*batchv1.Job)
	}{
		{name: "no git secret"},
		{
			name: "limits and resources",
			cfg: &Config{CloneImage: testCfg.CloneImage, Clone: CloneLimits{MaxBytes: 1 << 30, MaxFiles: 5000, AllowedNetworks: []string{"10.88.0.1/32", "10.0.0.0/8"}},
				CloneResources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}}},
			want: func(j *batchv1.Job) {
				c := &j.Spec.Template.Spec.Containers[0]
				c.Args = append(c.Args, "--max-bytes", "1073741824", "--max-files", "5000", "--allowed-networks", "10.88.0.1/32,10.0.0.0/8")
				c.Resources = corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}}
			},
		},
		{
			name: "git secret",
			run:  func(r *v1alpha1.PipelineRun) { r.Spec.GitSecretRef = &v1alpha1.SecretReference{Name: "git-creds"} },
			want: func(j *batchv1.Job) {
				pod := &j.Spec.Template.Spec
				c := &pod.Containers[0]
				c.Args = append(c.Args, "--secret-dir", "/etc/flowci/git-credentials")
				c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "git-credentials", MountPath: "/etc/flowci/git-credentials", ReadOnly: true})
				pod.Volumes = append(pod.Volumes, corev1.Volume{Name: "git-credentials", VolumeSource: corev1.VolumeSource{
					Secret: &corev1.SecretVolumeSource{SecretName: "git-creds", DefaultMode: new(int32(0o440))},
				}})
			},
		},
		{
			name: "service account does not reach the clone",
			run:  func(r *v1alpha1.PipelineRun) { r.Spec.ServiceAccountName = "deployer" },
		},
		{
			name: "pull policy and a $ in the URL",
			run:  func(r *v1alpha1.PipelineRun) { r.Spec.RepoURL = "https://git.example.com/$(HOME)/a$$b.git" },
			cfg:  &Config{CloneImage: testCfg.CloneImage, ImagePullPolicy: corev1.PullIfNotPresent},
			want: func(j *batchv1.Job) {
				c := &j.Spec.Template.Spec.Containers[0]
				c.ImagePullPolicy = corev1.PullIfNotPresent
				c.Args[2] = "https://git.example.com/$$(HOME)/a$$$$b.git"
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := testRun()
			if tt.run != nil {
				tt.run(run)
			}
			cfg := testCfg
			if tt.cfg != nil {
				cfg = *tt.cfg
			}
			want := wantCloneJob()
			if tt.want != nil {
				tt.want(want)
			}
			if diff := cmp.Diff(want, RenderCloneJob(run, cfg, nil)); diff != "" {
				t.Errorf("RenderCloneJob (-want +got):\n%s", diff)
			}
		})
	}
}

func ptrQ(s string) *resource.Quantity {
	q := resource.MustParse(s)
	return &q
}
