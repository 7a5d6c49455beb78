package pipeline

import (
	"os"
	"testing"
)

// TestOwnPipelineParses keeps the repository's own build/flow-ci.yaml, which the sample
// PipelineRun builds, valid.
func TestOwnPipelineParses(t *testing.T) {
	raw, err := os.ReadFile("../../build/flow-ci.yaml")
	if err != nil {
		t.Fatal(err)
	}
	def, err := Parse(raw)
	if err != nil {
		t.Fatalf("build/flow-ci.yaml: %v", err)
	}
	if def.Pipeline.Name != "flow-ci" || len(def.Pipeline.Steps) != 4 {
		t.Errorf("got pipeline %q with %d steps", def.Pipeline.Name, len(def.Pipeline.Steps))
	}
	if a, b, _ := def.Pipeline.Parallel(); a != "Vet" || b != "Unit tests" {
		t.Errorf("vet and the unit tests should run side by side; got %q and %q", a, b)
	}
}
