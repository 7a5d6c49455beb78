package runstate

import (
	"strings"
	"testing"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/pipeline"
)

func TestSkipUnchanged(t *testing.T) {
	def, err := pipeline.Parse([]byte(`name: m
steps:
- {name: api, dependsOn: [], when: {changes: ["api/**"]}, commands: [x]}
- {name: web, dependsOn: [], when: {changes: "web/**"}, commands: [x]}
- {name: all, commands: [x]}
finally:
- {name: docs, when: {changes: ["**/*.md"]}, commands: [x]}
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		changes *Changes
		want    []string
	}{
		{"no changes known", nil, []string{"P", "P", "P", "P"}},
		{"everything counts", &Changes{Since: "abc", All: true}, []string{"P", "P", "P", "P"}},
		{"only web", &Changes{Since: "abc", Files: []string{"web/a.js"}}, []string{"KW", "P", "P", "KW"}},
		{"api and a readme", &Changes{Since: "abc", Files: []string{"api/x.go", "README.md"}}, []string{"P", "KW", "P", "P"}},
		{"an empty commit", &Changes{Since: "abc"}, []string{"KW", "KW", "P", "KW"}},
	}
	for _, tt := range tests {
		run := graphRun("P", "P", "P", "P")
		SkipUnchanged(run, &def.Pipeline, tt.changes)
		if got := statesOf(run); strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
		for _, s := range run.Status.Steps {
			if s.Reason == v1alpha1.ReasonWhenFalse && !strings.Contains(s.Message, "when.changes") {
				t.Errorf("%s: %s: message %q does not name the filter", tt.name, s.Name, s.Message)
			}
		}
	}
}
