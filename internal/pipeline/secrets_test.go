package pipeline

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSecrets(t *testing.T) {
	def, err := Parse([]byte(`name: s
env: {A: x}
steps:
- name: deploy
  when: {event: [push, manual]}
  secrets:
  - name: deploy-token
    env: {TOKEN: token, B: other}
  - name: ca.bundle
    files: [tls.crt, ca.crt]
  commands: [x]
`))
	if err != nil {
		t.Fatal(err)
	}
	step := def.Pipeline.Steps[0]
	want := []SecretUse{
		{Name: "deploy-token", Env: []SecretEnv{{"B", "other"}, {"TOKEN", "token"}}, Line: 7},
		{Name: "ca.bundle", Files: []string{"ca.crt", "tls.crt"}, Line: 9},
	}
	if diff := cmp.Diff(want, step.Secrets); diff != "" {
		t.Errorf("secrets (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"push", "manual"}, step.When.Event); diff != "" {
		t.Errorf("when.event (-want +got):\n%s", diff)
	}
}

func TestParseSecretsErrors(t *testing.T) {
	tests := []struct {
		name, secrets, want string
	}{
		{"not a list", `secrets: {name: x}`, "steps[0].secrets: must be a list, got a mapping (line 4)"},
		{"bad name", `secrets: [{name: Deploy_Token, env: {T: t}}]`, `steps[0].secrets[0].name: must be a Secret's name (a DNS subdomain), got "Deploy_Token" (line 4)`},
		{"twice", `secrets: [{name: a, env: {T: t}}, {name: a, env: {U: t}}]`, `Secret "a" is listed twice`},
		{"nothing read", `secrets: [{name: a}]`, "must set env or files"},
		{"key escapes", `secrets: [{name: a, files: [..]}]`, `steps[0].secrets[0].files[0]: must be a key of the Secret`},
		{"key with slash", `secrets: [{name: a, files: [x/y]}]`, `must be a key of the Secret`},
		{"reserved variable", `secrets: [{name: a, env: {FLOWCI_X: t}}]`, "the FLOWCI_ prefix is reserved"},
		{"bad variable", `secrets: [{name: a, env: {1X: t}}]`, "invalid name"},
		{"variable twice", "env: {A: x}\n  secrets: [{name: a, env: {A: t}}]", `variable "A" is set twice`},
		{"unknown field", `secrets: [{name: a, env: {T: t}, mode: 0400}]`, "mode"},
		{"bad changes glob", `when: {changes: ["src/**", "/abs"]}`, `steps[0].when.changes[1]: invalid path glob "/abs"`},
		{"bad event", `when: {event: [push, pr]}`, `steps[0].when.event[1]: must be one of push, pull_request, schedule, manual, got "pr" (line 4)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte("name: s\nsteps:\n- name: x\n  " + tt.secrets + "\n  commands: [x]\n"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
