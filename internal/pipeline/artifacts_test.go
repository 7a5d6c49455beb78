package pipeline

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseArtifacts(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       *Artifacts
	}{
		{"none", "", nil},
		{"a list keeps on success", "  artifacts: [bin/app, dist/]\n", &Artifacts{Paths: []string{"bin/app", "dist"}, When: KeepOnSuccess, Line: 4}},
		{"one path", "  artifacts: bin/app\n", &Artifacts{Paths: []string{"bin/app"}, When: KeepOnSuccess, Line: 4}},
		{"a mapping", "  artifacts:\n    paths: ['reports/**/*.xml']\n    when: always\n", &Artifacts{Paths: []string{"reports/**/*.xml"}, When: KeepAlways, Line: 5}},
		{"on failure", "  artifacts: {paths: [core], when: on_failure}\n", &Artifacts{Paths: []string{"core"}, When: KeepOnFailure, Line: 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			def, err := Parse([]byte("name: a\nsteps:\n- name: build\n" + tc.yaml + "  commands: [make]\n"))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, def.Pipeline.Steps[0].Artifacts); diff != "" {
				t.Errorf("artifacts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseArtifactsErrors(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{"  artifacts: [../etc/passwd]\n", `steps[0].artifacts[0]: invalid artifact path "../etc/passwd"`},
		{"  artifacts: [/etc/passwd]\n", `starts with '/'`},
		{"  artifacts: ['a/../../b']\n", `has a ".." segment`},
		{"  artifacts: {paths: [x], when: sometimes}\n", `steps[0].artifacts.when: must be on_success, on_failure or always, got "sometimes" (line 4)`},
		{"  artifacts: {when: always}\n", `steps[0].artifacts.paths: is required (line 4)`},
		{"  artifacts: {paths: [x], keep: 3}\n", `keep`},
		{"  artifacts: []\n", `steps[0].artifacts: must list at least one path (line 4)`},
		{"  artifacts: {paths: {a: b}}\n", `must be a list of paths`},
		{"  artifacts: [" + strings.Repeat("a,", 21) + "a]\n", `must have at most 20 paths, got 22`},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			_, err := Parse([]byte("name: a\nsteps:\n- name: build\n" + tc.yaml + "  commands: [make]\n"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestArtifactsKeeps(t *testing.T) {
	tests := []struct {
		a          *Artifacts
		ok, failed bool
	}{
		{nil, false, false},
		{&Artifacts{Paths: []string{"x"}, When: KeepOnSuccess}, true, false},
		{&Artifacts{Paths: []string{"x"}, When: KeepOnFailure}, false, true},
		{&Artifacts{Paths: []string{"x"}, When: KeepAlways}, true, true},
		{&Artifacts{When: KeepAlways}, false, false},
	}
	for _, tc := range tests {
		if got := tc.a.Keeps(0); got != tc.ok {
			t.Errorf("%+v Keeps(0) = %v", tc.a, got)
		}
		if got := tc.a.Keeps(2); got != tc.failed {
			t.Errorf("%+v Keeps(2) = %v", tc.a, got)
		}
	}
}
