package localrun

import (
	"fmt"
	"strings"

	"github.com/flow-ci/flow-ci/internal/pipeline"
)

// ServicesNote says which of a step's services a local run does not start, and where
// the step expects them, or "" for a step without services. A local run has no
// container runtime of its own (steps run in the developer's shell), so it names each
// service's image and ports: the developer starts them, or points the step elsewhere.
func ServicesNote(step *pipeline.Step) string {
	if len(step.Services) == 0 {
		return ""
	}
	parts := make([]string, 0, len(step.Services))
	for _, s := range step.Services {
		d := fmt.Sprintf("%s (%s", s.Name, s.Image)
		for i, p := range s.Ports {
			sep := ", localhost:"
			if i > 0 {
				sep = ", :"
			}
			d += fmt.Sprintf("%s%d", sep, p)
		}
		parts = append(parts, d+")")
	}
	return "skipped its services, which flowci run does not start; the step expects them on localhost: " + strings.Join(parts, "; ")
}
