// Package cacheagent restores and saves a run's caches between its workspace and the
// archive, in the operator's own pods: the clone restores after its checkout, and the
// step the operator adds to runs that may save saves once the graph succeeded. It
// speaks the archive's agent API (internal/archive/api) with the pod's bound token and
// moves files with internal/wsfiles; it builds no Kubernetes client.
package cacheagent

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/pipeline"
	"github.com/flow-ci/flow-ci/internal/wsfiles"
)

// Spec is one cache as the operator passes it to its pods (FLOWCI_CACHES, JSON).
type Spec struct {
	Name string `json:"name"`
	// Dirs are relative to the workspace root: src/... (the checkout) or home/...
	Dirs        []string `json:"dirs"`
	KeyPrefix   string   `json:"keyPrefix"`
	KeyFiles    []string `json:"keyFiles,omitempty"`
	RestoreKeys []string `json:"restoreKeys,omitempty"`
}

// Specs are the pipeline's caches as its pods see them, with each directory mapped into
// the workspace: "~/x" to home/x, "x" to src/x.
func Specs(caches []pipeline.Cache) []Spec {
	out := make([]Spec, 0, len(caches))
	for _, c := range caches {
		s := Spec{Name: c.Name, KeyPrefix: c.KeyPrefix, KeyFiles: c.KeyFiles, RestoreKeys: c.RestoreKeys}
		for _, d := range c.Paths {
			if rest, home := strings.CutPrefix(d, "~/"); home {
				s.Dirs = append(s.Dirs, path.Join("home", rest))
			} else {
				s.Dirs = append(s.Dirs, path.Join("src", d))
			}
		}
		out = append(out, s)
	}
	return out
}

// Encode is the JSON of specs for the pods' environment.
func Encode(specs []Spec) string {
	b, _ := json.Marshal(specs) // strings and lists always encode
	return string(b)
}

// Decode reads FLOWCI_CACHES.
func Decode(raw string) ([]Spec, error) {
	var specs []Spec
	if err := json.Unmarshal([]byte(raw), &specs); err != nil {
		return nil, fmt.Errorf("FLOWCI_CACHES: %w", err)
	}
	return specs, nil
}

// keyText is what a key may be: what the pipeline's prefixes and the hash make.
var keyText = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// maxKeyBytes bounds the files a key hashes.
const maxKeyBytes = 256 << 20

// Key is the cache's key for the checkout at src: its prefix and the first 16 hex
// digits of the sha256 of its key files (internal/wsfiles.HashFiles), or "nofiles"
// when none match.
func Key(src string, s Spec) (string, error) {
	if len(s.KeyFiles) == 0 {
		return s.KeyPrefix + "-nofiles", nil
	}
	sum, n, err := wsfiles.HashFiles(src, s.KeyFiles, maxKeyBytes)
	if err != nil {
		return "", err
	}
	if n == 0 {
		return s.KeyPrefix + "-nofiles", nil
	}
	return s.KeyPrefix + "-" + sum[:16], nil
}

// Report is what a restore or a save did of one cache: a line of the pod's termination
// message (v1alpha1.CachesReportPrefix) becomes the run's status.caches.
type Report = v1alpha1.CacheStatus

// maxReportMessage bounds each report's message, so that eight of them stay within the
// kubelet's 4 KiB termination message and its line is never cut.
const maxReportMessage = 200

// EncodeReports is the termination message's last line.
func EncodeReports(reports []Report) string {
	for i := range reports {
		if m := reports[i].Message; len(m) > maxReportMessage {
			reports[i].Message = strings.ToValidUTF8(m[:maxReportMessage], "")
		}
	}
	b, _ := json.Marshal(reports) // plain fields always encode
	return v1alpha1.CachesReportPrefix + string(b)
}

// since is the time from start, as status shows it.
func since(start time.Time) *metav1.Duration {
	return &metav1.Duration{Duration: time.Since(start).Round(time.Millisecond)}
}
