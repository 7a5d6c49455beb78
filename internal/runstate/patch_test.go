package runstate

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

func TestStatusPatch(t *testing.T) {
	at := metav1.Unix(1700000000, 0)
	steps := func(phases ...v1alpha1.StepPhase) []v1alpha1.StepStatus {
		var out []v1alpha1.StepStatus
		for i, p := range phases {
			out = append(out, v1alpha1.StepStatus{Name: string(rune('a' + i)), Index: int32(i), Phase: p})
		}
		return out
	}
	running := v1alpha1.PipelineRunStatus{Phase: v1alpha1.PhaseRunning, Progress: "1/3", StartTime: &at,
		Steps: steps(v1alpha1.StepSucceeded, v1alpha1.StepRunning, v1alpha1.StepPending)}
	handedOff := *running.DeepCopy()
	handedOff.Progress = "2/3"
	handedOff.Steps[1].Phase, handedOff.Steps[2].Phase = v1alpha1.StepSucceeded, v1alpha1.StepRunning
	cases := []struct {
		name          string
		before, after v1alpha1.PipelineRunStatus
		// paths the patch touches, besides the resourceVersion
		paths []string
	}{
		{"a new run's first status", v1alpha1.PipelineRunStatus{}, running, []string{"add /status"}},
		{"nothing changed", running, running, nil},
		{"a handoff rewrites the two steps it moves", running, handedOff,
			[]string{"add /status/progress", "replace /status/steps/1", "replace /status/steps/2"}},
		{"a field cleared", v1alpha1.PipelineRunStatus{Phase: v1alpha1.PhaseQueued, CurrentStep: "x"}, v1alpha1.PipelineRunStatus{Phase: v1alpha1.PhaseQueued},
			[]string{"remove /status/currentStep"}},
		{"steps planned", v1alpha1.PipelineRunStatus{Phase: v1alpha1.PhasePending}, running,
			[]string{"add /status/phase", "add /status/progress", "add /status/startTime", "add /status/steps"}},
		{"steps of another length replace the list", running, v1alpha1.PipelineRunStatus{Phase: v1alpha1.PhaseRunning, Progress: "1/3", StartTime: &at,
			Steps: steps(v1alpha1.StepSucceeded)}, []string{"add /status/steps"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			patch, err := StatusPatch(&tc.before, &tc.after, "41")
			if err != nil {
				t.Fatal(err)
			}
			var ops []patchOp
			if err := json.Unmarshal(patch, &ops); err != nil {
				t.Fatal(err)
			}
			var paths []string
			for _, op := range ops[1:] {
				paths = append(paths, op.Op+" "+op.Path)
			}
			if !reflect.DeepEqual(paths, tc.paths) {
				t.Errorf("paths %v, want %v", paths, tc.paths)
			}
			// Applied to the object the pass read, it gives the status the pass computed.
			doc := map[string]any{"metadata": map[string]any{"resourceVersion": "41"}}
			if b, _ := json.Marshal(tc.before); string(b) != "{}" {
				doc["status"] = tc.before
			}
			got := apply(t, doc, patch)
			if got.ResourceVersion != "41" {
				t.Errorf("resourceVersion %q", got.ResourceVersion)
			}
			if !reflect.DeepEqual(normalized(t, got.Status), normalized(t, tc.after)) {
				t.Errorf("patched status %+v, want %+v", got.Status, tc.after)
			}
		})
	}
}

// TestStatusPatchLocks: the patch carries the resourceVersion the pass read, so the API
// server refuses it when the run changed since.
func TestStatusPatchLocks(t *testing.T) {
	patch, err := StatusPatch(&v1alpha1.PipelineRunStatus{Phase: v1alpha1.PhasePending}, &v1alpha1.PipelineRunStatus{Phase: v1alpha1.PhaseRunning}, "7")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(patch), `[{"op":"replace","path":"/metadata/resourceVersion","value":"7"}`) {
		t.Errorf("patch %s does not lock on the resourceVersion first", patch)
	}
}

func apply(t *testing.T, doc map[string]any, patch []byte) *v1alpha1.PipelineRun {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		t.Fatalf("decoding %s: %v", patch, err)
	}
	out, err := p.Apply(b)
	if err != nil {
		t.Fatalf("applying %s to %s: %v", patch, b, err)
	}
	run := &v1alpha1.PipelineRun{}
	if err := json.Unmarshal(out, run); err != nil {
		t.Fatal(err)
	}
	return run
}

// normalized is the status as JSON: what the API server stores.
func normalized(t *testing.T, st v1alpha1.PipelineRunStatus) string {
	t.Helper()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
