package runstate

import (
	"encoding/json"
	"strings"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// SplitArtifactsReport splits a step container's termination message into the message
// itself and the artifacts report its wrapper put on the last line
// (v1alpha1.ArtifactsReportPrefix), nil when there is none or it does not parse. The
// report is bounded to what status holds.
func SplitArtifactsReport(msg string) (string, *v1alpha1.StepArtifacts) {
	trimmed := strings.TrimRight(msg, "\n")
	i := strings.LastIndex(trimmed, "\n"+v1alpha1.ArtifactsReportPrefix)
	line := ""
	switch {
	case i >= 0:
		line, trimmed = trimmed[i+1:], trimmed[:i]
	case strings.HasPrefix(trimmed, v1alpha1.ArtifactsReportPrefix):
		line, trimmed = trimmed, ""
	default:
		return msg, nil
	}
	rep := &v1alpha1.StepArtifacts{}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, v1alpha1.ArtifactsReportPrefix)), rep); err != nil {
		return msg, nil
	}
	rep.Clamp()
	return trimmed, rep
}

// TotalArtifacts sums what the run's steps kept, nil when none kept anything. Each step's
// figures are clamped (StepArtifacts.Clamp) and there are at most MaxSteps, so the sums
// cannot overflow however a step forges its report.
func TotalArtifacts(steps []v1alpha1.StepStatus) *v1alpha1.ArtifactTotals {
	var t v1alpha1.ArtifactTotals
	for _, s := range steps {
		if a := s.Artifacts; a != nil {
			c := *a
			c.Clamp()
			t.Count += c.Count
			t.Bytes += c.Bytes
		}
	}
	if t.Count == 0 {
		return nil
	}
	return &t
}
