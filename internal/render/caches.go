package render

import (
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/cacheagent"
	"github.com/flow-ci/flow-ci/internal/pipeline"
)

// cachesEnv carries the pipeline's caches to the clone and the saving step
// (cacheagent.Spec, JSON).
const cachesEnv = "FLOWCI_CACHES"

// WithCacheRestore makes the clone restore the pipeline's caches once it has checked
// out the commit: it gets the caches, the archive's address and certificate, and a
// token bound to its pod (audience flow-ci-archive), with which the archive lets it read
// its own namespace's and repository's entries only. A pipeline without caches leaves
// the clone as it is.
func WithCacheRestore(job *batchv1.Job, p *pipeline.Pipeline, cfg Config) {
	if len(p.Caches) == 0 {
		return
	}
	spec := &job.Spec.Template.Spec
	c := &spec.Containers[0]
	c.Env = append(c.Env, corev1.EnvVar{Name: cachesEnv, Value: escapeExpansion(cacheagent.Encode(cacheagent.Specs(p.Caches)))})
	archiveAccess(spec, c, cfg)
}

// archiveAccess gives a container the archive's address and certificate and a token
// bound to its pod, when there is an archive.
func archiveAccess(spec *corev1.PodSpec, c *corev1.Container, cfg Config) {
	if cfg.Archive.URL == "" || cfg.Archive.CA == "" {
		return
	}
	c.Env = append(c.Env,
		corev1.EnvVar{Name: "FLOWCI_ARCHIVE_URL", Value: escapeExpansion(cfg.Archive.URL)},
		corev1.EnvVar{Name: "FLOWCI_ARCHIVE_CA", Value: escapeExpansion(cfg.Archive.CA)})
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: archiveTokenVolume, MountPath: archiveTokenDir, ReadOnly: true})
	spec.Volumes = append(spec.Volumes, corev1.Volume{Name: archiveTokenVolume, VolumeSource: corev1.VolumeSource{
		Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{
			ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Audience: ArchiveAudience, ExpirationSeconds: new(int64(archiveTokenSeconds)), Path: "token",
			},
		}}},
	}})
}

// cacheSaveContainer is the saving step's container: the operator's own image and
// binary (`flow-ci caches save`), never the pipeline's, with the clone's resources and
// no API token (RenderStepJob gives it none, whatever the run's ServiceAccount).
func cacheSaveContainer(spec *corev1.PodSpec, run *v1alpha1.PipelineRun, p *pipeline.Pipeline, cfg Config) {
	c := &spec.Containers[0]
	c.Image, c.Command, c.Args = cfg.CloneImage, []string{"/flow-ci"}, []string{"caches", "save", "--workspace", WorkspaceMount}
	c.WorkingDir = WorkspaceMount
	// The branch tells a detached run (none) to save nothing before it packs anything:
	// the archive would refuse it.
	c.Env = []corev1.EnvVar{{Name: cachesEnv, Value: escapeExpansion(cacheagent.Encode(cacheagent.Specs(p.Caches)))},
		env("FLOWCI_BRANCH", run.Status.Branch)}
	c.Resources = cfg.CloneResources
	c.SecurityContext = containerSecurityContext(true)
	spec.Volumes = append(spec.Volumes, corev1.Volume{Name: tmpVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: &tmpSizeLimit}}})
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: tmpVolume, MountPath: "/tmp"})
	archiveAccess(spec, c, cfg)
}

// withCacheEnv points the tools of the caches' presets at their directories on the
// volume (GOMODCACHE, GOCACHE, ...), since an image may set them elsewhere (golang's
// GOPATH=/go). A variable the file sets itself wins.
func withCacheEnv(c *corev1.Container, p *pipeline.Pipeline) {
	set := map[string]bool{}
	for _, e := range c.Env {
		set[e.Name] = true
	}
	for _, cache := range p.Caches {
		for _, e := range cache.Env {
			if !set[e.Name] {
				set[e.Name] = true
				c.Env = append(c.Env, corev1.EnvVar{Name: e.Name, Value: escapeExpansion(strings.ReplaceAll(e.Value, "~", HomeDir))})
			}
		}
	}
}

// SavesCachesStep says whether step i of a run's pipeline is the step the operator adds
// to save its caches.
func SavesCachesStep(p *pipeline.Pipeline, i int) bool {
	return i >= 0 && i < len(p.Steps)+len(p.Finally) && p.Step(i).SavesCaches
}

// PipelineOf is the pipeline a run runs: its file's, with the step that saves its
// caches when the run may save them (v1alpha1.SavesCaches, from its labels only, so
// every pass and every replica sees the same steps).
func PipelineOf(run *v1alpha1.PipelineRun, p pipeline.Pipeline) pipeline.Pipeline {
	if v1alpha1.SavesCaches(run) {
		return pipeline.WithCacheSave(p)
	}
	return p
}
