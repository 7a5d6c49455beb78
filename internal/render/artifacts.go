package render

import (
	"encoding/json"

	corev1 "k8s.io/api/core/v1"

	"github.com/flow-ci/flow-ci/internal/pipeline"
)

// ArchiveConfig is where the pods that keep artifacts reach the archive.
type ArchiveConfig struct {
	// URL is the archive's HTTPS base URL as pods reach it; "" when there is no archive,
	// and a step that keeps artifacts then says so in its log and status.
	URL string
	// CA is the PEM of the certificate the archive serves (its ConfigMap
	// flow-ci-archive-ca), passed by value since pods in other namespaces cannot mount
	// that ConfigMap.
	CA string
}

// Where a step that keeps artifacts reads its archive token, and the token's audience:
// the API server refuses it, so it reaches the archive only.
const (
	archiveTokenDir    = "/var/run/flowci/archive"
	archiveTokenVolume = "flowci-archive-token"
	// ArchiveAudience is internal/archive/api.AgentAudience.
	ArchiveAudience = "flow-ci-archive"
	// archiveTokenSeconds is the token's lifetime; the kubelet renews it at 80%.
	archiveTokenSeconds = 3600
)

// withArtifacts makes a step that keeps artifacts run under flowci-mask, which, once the
// script ends, collects the files its globs match in the checkout and uploads them with
// a ServiceAccount token bound to the pod. The token names the pod, which the archive
// checks is a step pod of its run that has not ended, so a step can only add files to
// its own run, within the archive's limits.
func withArtifacts(spec *corev1.PodSpec, step pipeline.Step, cfg Config) {
	if step.Artifacts == nil {
		return
	}
	raw, _ := json.Marshal(struct {
		Paths []string `json:"paths"`
		When  string   `json:"when"`
	}{step.Artifacts.Paths, step.Artifacts.When}) // strings always encode
	c := &spec.Containers[0]
	c.Env = append(c.Env,
		corev1.EnvVar{Name: "FLOWCI_ARTIFACTS", Value: escapeExpansion(string(raw))},
		corev1.EnvVar{Name: "FLOWCI_ARTIFACTS_ROOT", Value: SourceDir})
	archiveAccess(spec, c, cfg)
	wrap(spec, cfg)
}
