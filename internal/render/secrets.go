package render

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/pipeline"
)

// The masking wrapper of steps that ask for Secrets (cmd/flowci-mask). It ships in the
// operator's image; an init container copies it into an emptyDir, since the step's own
// image is the user's.
const (
	// MaskBinary is the wrapper's path in the operator's image.
	MaskBinary = "/flowci-mask"
	// maskDir is where the step container finds the copied wrapper: a top-level
	// directory no image has (/flowci is the CLI's file in the operator's image, and
	// the mount point must be a directory in both images).
	maskDir      = "/flowci-bin"
	maskVolume   = "flowci-bin"
	maskInitName = "flowci-mask"
	// secretVolumePrefix names the volume of the Secret a step asks for files of.
	secretVolumePrefix = "secret-"
	// secretFileMode is owner and group read: steps run as DefaultUID with fsGroup
	// DefaultUID, and no one else needs the files.
	secretFileMode = 0o440
)

// maskDirLimit bounds the emptyDir the wrapper is copied into (it is about 2 MiB).
var maskDirLimit = resource.MustParse("16Mi")

// withSecrets gives a step's pod the Secrets its step asks for: variables from their
// keys (the kubelet resolves them; the values never pass through the operator) and
// files under pipeline.SecretsDir, and runs the step's script under flowci-mask, which
// reads exactly those values and writes "***" in their place on the container's
// output, so that kubectl logs, the status tails and the archive never see them. A
// step that asks for no Secret is rendered as before. A Secret the run does not expose
// is an error: the scheduler fails such a step first (SecretNotExposed), and this keeps
// a Job from ever carrying one.
func withSecrets(spec *corev1.PodSpec, run *v1alpha1.PipelineRun, step pipeline.Step, cfg Config) error {
	if len(step.Secrets) == 0 {
		return nil
	}
	for _, use := range step.Secrets {
		if !slices.Contains(run.Spec.SecretNames(), use.Name) {
			return fmt.Errorf("it asks for Secret %q, which the run does not expose (spec.secrets)", use.Name)
		}
	}
	c := &spec.Containers[0]
	var maskEnv, maskDirs []string
	for i, use := range step.Secrets {
		for _, e := range use.Env {
			c.Env = append(c.Env, corev1.EnvVar{Name: e.Name, ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: use.Name}, Key: e.Key},
			}})
			maskEnv = append(maskEnv, e.Name)
		}
		if len(use.Files) == 0 {
			continue
		}
		vol := secretVolumePrefix + strconv.Itoa(i)
		items := make([]corev1.KeyToPath, len(use.Files))
		for j, key := range use.Files {
			items[j] = corev1.KeyToPath{Key: key, Path: key}
		}
		spec.Volumes = append(spec.Volumes, corev1.Volume{Name: vol, VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: use.Name, Items: items, DefaultMode: new(int32(secretFileMode))},
		}})
		dir := path.Join(pipeline.SecretsDir, use.Name)
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: vol, MountPath: dir, ReadOnly: true})
		maskDirs = append(maskDirs, dir)
	}
	c.Env = append(c.Env,
		corev1.EnvVar{Name: "FLOWCI_MASK_ENV", Value: strings.Join(maskEnv, ",")},
		corev1.EnvVar{Name: "FLOWCI_MASK_DIRS", Value: strings.Join(maskDirs, ":")})
	wrap(spec, cfg)
	return nil
}

// wrap runs the step's script under flowci-mask, copied from the operator's image by an
// init container: for masking, and for keeping artifacts once the script ends. Once per
// pod.
func wrap(spec *corev1.PodSpec, cfg Config) {
	for _, ic := range spec.InitContainers {
		if ic.Name == maskInitName {
			return
		}
	}
	c := &spec.Containers[0]
	c.Command = append([]string{path.Join(maskDir, "flowci-mask"), "run", "--"}, c.Command...)
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: maskVolume, MountPath: maskDir, ReadOnly: true})
	spec.Volumes = append(spec.Volumes, corev1.Volume{Name: maskVolume, VolumeSource: corev1.VolumeSource{
		EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: &maskDirLimit},
	}})
	spec.InitContainers = append(spec.InitContainers, corev1.Container{
		Name:                     maskInitName,
		Image:                    cfg.CloneImage,
		ImagePullPolicy:          cfg.ImagePullPolicy,
		Command:                  []string{MaskBinary, "install", path.Join(maskDir, "flowci-mask")},
		VolumeMounts:             []corev1.VolumeMount{{Name: maskVolume, MountPath: maskDir}},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		SecurityContext:          containerSecurityContext(true),
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
		},
	})
}
