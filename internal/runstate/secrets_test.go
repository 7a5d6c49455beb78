package runstate

import (
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/pipeline"
)

// TestScheduleSecretsAndEvents: a step that asks for a Secret the run does not expose
// fails (SecretNotExposed, naming the Secret) once it could run, and never starts; its
// dependents are skipped in the same pass; allowFailure forgives it; a when that does
// not hold skips the step before its Secrets are looked at; when.event matches the
// run's event.
func TestScheduleSecretsAndEvents(t *testing.T) {
	def, err := pipeline.Parse([]byte(`
name: s
steps:
- {name: a, dependsOn: [], commands: [x], secrets: [{name: token, env: {T: t}}]}
- {name: b, dependsOn: [a], commands: [x]}
- {name: c, dependsOn: [], commands: [x], allowFailure: true, secrets: [{name: other, files: [k]}]}
- {name: d, dependsOn: [], commands: [x], when: {event: push}, secrets: [{name: other, env: {O: k}}]}
- {name: e, dependsOn: [], commands: [x], when: {event: [manual, schedule]}}
finally:
- {name: f, commands: [x], secrets: [{name: other, env: {O: k}}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		event   v1alpha1.Event
		exposed []string
		want    []string
		ready   []int
	}{
		{"all exposed, push", v1alpha1.EventPush, []string{"token", "other"}, []string{"P", "P", "P", "P", "KW", "P"}, []int{0, 2, 3}},
		{"token missing, manual", v1alpha1.EventManual, []string{"other"}, []string{"FS", "KU", "P", "KW", "P", "P"}, []int{2, 4}},
		{"nothing exposed, push", v1alpha1.EventPush, nil, []string{"FS", "KU", "FA", "FS", "KW", "FS"}, nil},
	}
	codes["FS"] = struct {
		phase  v1alpha1.StepPhase
		reason string
	}{v1alpha1.StepFailed, v1alpha1.ReasonSecretNotExposed}
	defer delete(codes, "FS")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := graphRun("P", "P", "P", "P", "P", "P")
			g := GraphOf(&def.Pipeline, "main", 0)
			g.Event, g.Exposed = tt.event, tt.exposed
			ready := Schedule(run, g, nil, metav1.Now())
			// allowFailure turns the failure into AllowedFailure on the next pass.
			Schedule(run, g, nil, metav1.Now())
			if got := statesOf(run); !slices.Equal(got, tt.want) {
				t.Errorf("states %q, want %q", got, tt.want)
			}
			if !slices.Equal(ready, tt.ready) {
				t.Errorf("ready %v, want %v", ready, tt.ready)
			}
			for _, s := range run.Status.Steps {
				if s.Reason == v1alpha1.ReasonSecretNotExposed && !strings.Contains(s.Message, `Secret "`) {
					t.Errorf("step %s: message %q does not name the Secret", s.Name, s.Message)
				}
			}
		})
	}
}

// TestFinallyStepAsksForUnexposedSecret: a finally step fails the same way once the
// graph has ended.
func TestFinallyStepAsksForUnexposedSecret(t *testing.T) {
	def, err := pipeline.Parse([]byte(`
name: s
steps:
- {name: a, commands: [x]}
finally:
- {name: f, commands: [x], secrets: [{name: other, env: {O: k}}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	run := graphRun("S", "P")
	g := GraphOf(&def.Pipeline, "main", 0)
	if ready := Schedule(run, g, nil, metav1.Now()); len(ready) != 0 {
		t.Errorf("ready %v, want none", ready)
	}
	if s := run.Status.Steps[1]; s.Phase != v1alpha1.StepFailed || s.Reason != v1alpha1.ReasonSecretNotExposed || !strings.Contains(s.Message, `"other"`) {
		t.Errorf("finally step %+v", s)
	}
}
