package runstate

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

func TestSplitArtifactsReport(t *testing.T) {
	tests := []struct {
		name, msg, tail string
		rep             *v1alpha1.StepArtifacts
	}{
		{"no report", "make: *** [test] Error 1\n", "make: *** [test] Error 1\n", nil},
		{"the tail, then the report", "FAIL x\n" + v1alpha1.ArtifactsReportPrefix + `{"count":2,"bytes":300,"refused":["leak: a symlink"]}` + "\n",
			"FAIL x", &v1alpha1.StepArtifacts{Count: 2, Bytes: 300, Refused: []string{"leak: a symlink"}}},
		{"a report alone", v1alpha1.ArtifactsReportPrefix + `{"error":"this cluster's flow-ci has no archive"}`, "",
			&v1alpha1.StepArtifacts{Error: "this cluster's flow-ci has no archive"}},
		{"a forged report is bounded", "x\n" + v1alpha1.ArtifactsReportPrefix + `{"count":-3,"bytes":-1,"refused":["1","2","3","4","5","6","7"]}`,
			"x", &v1alpha1.StepArtifacts{Refused: []string{"1", "2", "3", "4", "5"}}},
		{"a line that does not parse stays in the message", "x\n" + v1alpha1.ArtifactsReportPrefix + "{oops", "x\n" + v1alpha1.ArtifactsReportPrefix + "{oops", nil},
		{"only the last line counts", v1alpha1.ArtifactsReportPrefix + `{"count":9}` + "\nmore output", v1alpha1.ArtifactsReportPrefix + `{"count":9}` + "\nmore output", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tail, rep := SplitArtifactsReport(tc.msg)
			if tail != tc.tail {
				t.Errorf("tail %q, want %q", tail, tc.tail)
			}
			if d := cmp.Diff(tc.rep, rep); d != "" {
				t.Errorf("report (-want +got):\n%s", d)
			}
		})
	}
	long := strings.Repeat("r", 2000)
	_, rep := SplitArtifactsReport(v1alpha1.ArtifactsReportPrefix + `{"refused":["` + long + `"]}`)
	if rep == nil || len(rep.Refused[0]) != 512 {
		t.Errorf("a long refusal is cut to what status holds: %v", rep)
	}
}

func TestTotalArtifacts(t *testing.T) {
	steps := []v1alpha1.StepStatus{{}, {Artifacts: &v1alpha1.StepArtifacts{Count: 2, Bytes: 10}}, {Artifacts: &v1alpha1.StepArtifacts{Count: 1, Bytes: 5}}}
	if got := TotalArtifacts(steps); got == nil || *got != (v1alpha1.ArtifactTotals{Count: 3, Bytes: 15}) {
		t.Errorf("TotalArtifacts = %v", got)
	}
	huge := []v1alpha1.StepStatus{{Artifacts: &v1alpha1.StepArtifacts{Count: 1 << 30, Bytes: 1 << 62}}, {Artifacts: &v1alpha1.StepArtifacts{Count: 1 << 30, Bytes: 1 << 62}}}
	if got := TotalArtifacts(huge); got == nil || got.Bytes < 0 || got.Count < 0 {
		t.Errorf("forged reports overflow the totals: %v", got)
	}
	if got := TotalArtifacts(steps[:1]); got != nil {
		t.Errorf("no artifacts: %v, want nil", got)
	}
}
