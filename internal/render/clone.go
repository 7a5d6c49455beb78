package render

import (
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// Config is what the manager's flags decide about rendered pods.
type Config struct {
	// DefaultStepImage is used when neither the step nor the pipeline sets
	// an image.
	DefaultStepImage string
	// CloneImage is the operator's own image; its `clone` subcommand checks
	// out the commit.
	CloneImage string
	// ImagePullPolicy of every container; "" leaves the Kubernetes default.
	ImagePullPolicy corev1.PullPolicy
	// StepResources and CloneResources are the containers' requests and limits; a
	// pipeline file overrides the steps' (StepResources).
	StepResources, CloneResources corev1.ResourceRequirements
	// MaxStepResources bounds what a file may ask for a step (CheckStepResources).
	MaxStepResources corev1.ResourceList
	// Clone bounds what the clone Job reads and where it may connect.
	Clone CloneLimits
	// Archive is where steps keep their artifacts.
	Archive ArchiveConfig
	// StepPriorityClass is given to the steps of a run pinned to one node, so that they
	// may use the room its hold keeps (hold.go); "" turns the hold off.
	StepPriorityClass string
}

// CloneLimits are passed to the clone Job's `clone` subcommand.
type CloneLimits struct {
	// MaxBytes bounds the bytes read from the git server; MaxFiles the files checked
	// out. Zero leaves the subcommand's default.
	MaxBytes int64
	MaxFiles int
	// AllowedNetworks are the networks the default egress policy would deny that the
	// clone may reach, as CIDRs.
	AllowedNetworks []string
}

const (
	// gitCredentialsDir is where the clone pod sees the run's git Secret.
	gitCredentialsDir    = "/etc/flowci/git-credentials"
	gitCredentialsVolume = "git-credentials"
	tmpVolume            = "tmp"

	// cloneBackoffLimit retries a failed clone twice: it is idempotent and
	// usually fails on network blips.
	cloneBackoffLimit = 2
	// cloneDeadlineSeconds bounds a clone that hangs on the network.
	cloneDeadlineSeconds = 600
)

// tmpSizeLimit bounds the clone pod's scratch /tmp (git's HOME): the pack is spilled
// onto the workspace volume, never here.
var tmpSizeLimit = resource.MustParse("64Mi")

// RenderCloneJob renders the Job that checks out status.commit of the run's
// repository into SourceDir and creates HomeDir. Its pod has no
// ServiceAccount token and a read-only root filesystem; the git Secret, if
// any, is mounted into this pod only and never into steps. reserve, when the steps are
// pinned to the clone's node, is what the steps request at their peak (PeakRequests):
// the clone requests it, so it lands on a node with room for them.
func RenderCloneJob(run *v1alpha1.PipelineRun, cfg Config, reserve corev1.ResourceList) *batchv1.Job {
	// A detached run (status.branch empty) checks its commit out on a detached HEAD.
	args := []string{
		"clone",
		"--repo", run.Spec.RepoURL,
		"--branch", run.Status.Branch,
		"--commit", run.Status.Commit,
		"--dest", SourceDir,
		"--home", HomeDir,
	}
	if run.Spec.ResumeFrom != nil {
		// The workspace is the resumed run's: check that it still holds the commit's
		// checkout (a finally step may have cleaned it) instead of cloning.
		args = append(args, "--verify")
	}
	if l := cfg.Clone; l.MaxBytes > 0 {
		args = append(args, "--max-bytes", strconv.FormatInt(l.MaxBytes, 10))
	}
	if l := cfg.Clone; l.MaxFiles > 0 {
		args = append(args, "--max-files", strconv.Itoa(l.MaxFiles))
	}
	if nets := cfg.Clone.AllowedNetworks; len(nets) > 0 {
		args = append(args, "--allowed-networks", strings.Join(nets, ","))
	}
	mounts := []corev1.VolumeMount{
		workspaceMount(),
		{Name: tmpVolume, MountPath: "/tmp"},
	}
	volumes := []corev1.Volume{
		workspaceVolumeSource(run),
		{Name: tmpVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: &tmpSizeLimit}}},
	}
	if ref := run.Spec.GitSecretRef; ref != nil && run.Spec.ResumeFrom == nil { // a check reads no server
		args = append(args, "--secret-dir", gitCredentialsDir)
		mounts = append(mounts, corev1.VolumeMount{Name: gitCredentialsVolume, MountPath: gitCredentialsDir, ReadOnly: true})
		volumes = append(volumes, corev1.Volume{
			Name: gitCredentialsVolume,
			VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName: ref.Name,
				// Group-readable: the files belong to fsGroup, not to our uid.
				DefaultMode: new(int32(0o440)),
			}},
		})
	}
	args = escapeAll(args)

	labels := Labels(run, v1alpha1.ComponentClone)
	return &batchv1.Job{
		ObjectMeta: objectMeta(run, CloneJobName(run), labels),
		Spec: batchv1.JobSpec{
			BackoffLimit:          new(int32(cloneBackoffLimit)),
			ActiveDeadlineSeconds: new(int64(cloneDeadlineSeconds)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: objectMetaForPod(run, labels),
				Spec: corev1.PodSpec{
					RestartPolicy:                corev1.RestartPolicyNever,
					AutomountServiceAccountToken: new(false),
					EnableServiceLinks:           new(false),
					SecurityContext:              podSecurityContext(),
					Containers: []corev1.Container{{
						Name:            "clone",
						Image:           cfg.CloneImage,
						ImagePullPolicy: cfg.ImagePullPolicy,
						Args:            args,
						// git wants a writable $HOME; the root filesystem is not.
						Env:                      []corev1.EnvVar{env("HOME", "/tmp")},
						Resources:                cloneResources(cfg, reserve),
						VolumeMounts:             mounts,
						TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
						SecurityContext:          containerSecurityContext(true),
					}},
					Volumes: volumes,
				},
			},
		},
	}
}
