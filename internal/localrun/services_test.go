package localrun

import (
	"testing"

	"github.com/flow-ci/flow-ci/internal/pipeline"
)

func TestServicesNote(t *testing.T) {
	for _, tc := range []struct {
		name string
		step pipeline.Step
		want string
	}{
		{"none", pipeline.Step{Name: "a"}, ""},
		{"one with ports", pipeline.Step{Services: []pipeline.Service{{Name: "db", Image: "postgres:16", Ports: []int32{5432, 5433}}}},
			"skipped its services, which flowci run does not start; the step expects them on localhost: db (postgres:16, localhost:5432, :5433)"},
		{"two, one without ports", pipeline.Step{Services: []pipeline.Service{{Name: "db", Image: "pg:1", Ports: []int32{5432}}, {Name: "worker", Image: "w:2"}}},
			"skipped its services, which flowci run does not start; the step expects them on localhost: db (pg:1, localhost:5432); worker (w:2)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ServicesNote(&tc.step); got != tc.want {
				t.Errorf("ServicesNote = %q, want %q", got, tc.want)
			}
		})
	}
}
