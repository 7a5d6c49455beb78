package render

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// longRun is a 253-character DNS subdomain, the longest name a run can have.
var longRun = strings.Repeat("abcdefghi.", 25) + "abc"

func named(name string) *v1alpha1.PipelineRun {
	return &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: name, UID: "6f1c2a6e-6a3b-4b8e-9d1e-2f0c9a7b5d43"}}
}

// The expected hashes were computed independently: the first 10 hex digits
// of sha256("<run>\x00<component>[\x00<index>\x00<raw step name>]").
func TestWorkspaceAndCloneNames(t *testing.T) {
	tests := []struct {
		run       string
		workspace string
		clone     string
	}{
		{"build-1", "build-1-ws", "build-1-clone"},
		// Dots are replaced, and the hash keeps "my.run" apart from "my-run".
		{"my.run", "my-run-ws-4790247afd", "my-run-clone-623aab1b84"},
		{"my-run", "my-run-ws", "my-run-clone"},
		// 60 + "-ws" is exactly 63; "-clone" no longer fits.
		{strings.Repeat("a", 60), strings.Repeat("a", 60) + "-ws", strings.Repeat("a", 46) + "-clone-7ee968c19a"},
		{strings.Repeat("a", 61), strings.Repeat("a", 49) + "-ws-9d3304ba7c", strings.Repeat("a", 46) + "-clone-51d610023f"},
		{longRun,
			"abcdefghi-abcdefghi-abcdefghi-abcdefghi-abcdefghi-ws-8b26895576",
			"abcdefghi-abcdefghi-abcdefghi-abcdefghi-abcdef-clone-9a936dc3d5"},
		// Same 252-character prefix: only the hash tells them apart.
		{longRun[:252] + "d",
			"abcdefghi-abcdefghi-abcdefghi-abcdefghi-abcdefghi-ws-62eeb4fa6e",
			"abcdefghi-abcdefghi-abcdefghi-abcdefghi-abcdef-clone-300f2fbc80"},
	}
	for _, tt := range tests {
		run := named(tt.run)
		got := [2]string{WorkspaceName(run), CloneJobName(run)}
		if diff := cmp.Diff([2]string{tt.workspace, tt.clone}, got); diff != "" {
			t.Errorf("names of run %q (-want +got):\n%s", tt.run, diff)
		}
	}
}

func TestStepJobName(t *testing.T) {
	tests := []struct {
		run   string
		index int
		step  string
		want  string
	}{
		{"build-1", 0, "Download dependencies", "build-1-0-download-dependencie"},
		{"build-1", 1, "Ünïcode Build ✓", "build-1-1-n-code-build"},
		{"build-1", 2, "  Lint & Test  ", "build-1-2-lint-test"},
		{"build-1", 3, "!!!", "build-1-3"},
		{"build-1", 4, "✓", "build-1-4"},
		// Equal after sanitising; the index keeps them apart.
		{"build-1", 5, "Build", "build-1-5-build"},
		{"build-1", 6, "build!", "build-1-6-build"},
		{"my.run", 0, "test", "my-run-0-test-bcc46055f6"},
		{longRun, 7, "Run Integration Tests", "abcdefghi-abcdefghi-abcdefghi-7-run-integration-test-c7f0bc122c"},
		{strings.Repeat("x", 50), 99, "deploy-to-production-cluster", strings.Repeat("x", 28) + "-99-deploy-to-production-f991db9cdf"},
	}
	for _, tt := range tests {
		if got := StepJobName(named(tt.run), tt.index, tt.step); got != tt.want {
			t.Errorf("StepJobName(%.20q, %d, %q) = %q, want %q", tt.run, tt.index, tt.step, got, tt.want)
		}
	}
}

func TestLabelValues(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"build-1", "build-1"},
		{"my.run", "my.run"},
		{"Download dependencies", "Download-dependencies"},
		{"Ünïcode Build ✓", "n-code-Build"},
		{"_x_", "x"},
		{"!!!", ""},
		{strings.Repeat("a", 63), strings.Repeat("a", 63)},
		{longRun, "abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.ab-d2606f601d"},
	}
	for _, tt := range tests {
		if got := labelValue(tt.in); got != tt.want {
			t.Errorf("labelValue(%.20q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLabels(t *testing.T) {
	want := map[string]string{
		v1alpha1.LabelRun:       "build-1",
		v1alpha1.LabelRunUID:    "6f1c2a6e-6a3b-4b8e-9d1e-2f0c9a7b5d43",
		v1alpha1.LabelComponent: "clone",
	}
	if diff := cmp.Diff(want, Labels(named("build-1"), v1alpha1.ComponentClone)); diff != "" {
		t.Errorf("Labels (-want +got):\n%s", diff)
	}
	want = map[string]string{
		v1alpha1.LabelRun:       "build-1",
		v1alpha1.LabelRunUID:    "6f1c2a6e-6a3b-4b8e-9d1e-2f0c9a7b5d43",
		v1alpha1.LabelComponent: "step",
		v1alpha1.LabelStepIndex: "12",
		v1alpha1.LabelStep:      "Lint-Test",
	}
	if diff := cmp.Diff(want, stepLabels(named("build-1"), 12, "  Lint & Test  ")); diff != "" {
		t.Errorf("stepLabels (-want +got):\n%s", diff)
	}
}

func FuzzNames(f *testing.F) {
	f.Add("build-1", "Download dependencies", 0)
	f.Add("my.run", "Build!", 7)
	f.Add(longRun, "Ünïcode Build ✓", 99)
	f.Add("", "", -1)
	f.Add("...", "---", 1<<62)
	f.Add(strings.Repeat("-", 300), strings.Repeat("é", 40), -1<<63)
	f.Fuzz(func(t *testing.T, runName, stepName string, index int) {
		run := named(runName)
		run.UID = "00000000-0000-0000-0000-000000000000"
		names := map[string]string{
			"workspace": WorkspaceName(run),
			"clone":     CloneJobName(run),
			"step":      StepJobName(run, index, stepName),
		}
		for what, name := range names {
			if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
				t.Errorf("%s name %q of run %q: %v", what, name, runName, errs)
			}
		}
		if index < 1<<62 && names["step"] == StepJobName(run, index+1, stepName) {
			t.Errorf("steps %d and %d of run %q share the name %q", index, index+1, runName, names["step"])
		}
		labels := Labels(run, v1alpha1.ComponentStep)
		if index >= 0 { // RenderStepJob rejects negative indexes.
			labels = stepLabels(run, index, stepName)
		}
		for k, v := range labels {
			if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
				t.Errorf("label %s=%q (run %q, step %q): %v", k, v, runName, stepName, errs)
			}
		}
	})
}
