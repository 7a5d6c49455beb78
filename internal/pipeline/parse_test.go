package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// seedFile is the original flow-ci format, which must keep parsing.
const seedFile = `name: My First Pipeline
steps:
- name: Download dependencies
  commands:
  - go mod download
`

const digest64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseValid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Pipeline
	}{
		{
			name: "seed format",
			in:   seedFile,
			want: Pipeline{Version: 1, Name: "My First Pipeline", Steps: []Step{
				{Name: "Download dependencies", Commands: []string{"go mod download"}},
			}},
		},
		{
			name: "full extended format",
			in: `version: 1
name: full
image: golang:1.26
env:
  GOFLAGS: -mod=readonly
  CGO_ENABLED: 0
  DEBUG: true
steps:
- name: test
  image: registry.example.com:5000/team/go-tools:v1.2@sha256:` + digest64 + `
  env:
    ZED: z
    ALPHA: "a"
  commands:
  - go vet ./...
  - |
    go test \
      ./...
  timeout: 1h30m
  workingDir: ./src/../app/
  retries: 5
- name: lint
  commands: [golangci-lint run]
  workingDir: .
  timeout: 24h
  retries: 0
`,
			want: Pipeline{
				Version: 1,
				Name:    "full",
				Image:   "golang:1.26",
				Env: []EnvVar{
					{Name: "CGO_ENABLED", Value: "0"},
					{Name: "DEBUG", Value: "true"},
					{Name: "GOFLAGS", Value: "-mod=readonly"},
				},
				Steps: []Step{
					{
						Name:       "test",
						Image:      "registry.example.com:5000/team/go-tools:v1.2@sha256:" + digest64,
						Env:        []EnvVar{{Name: "ALPHA", Value: "a"}, {Name: "ZED", Value: "z"}},
						Commands:   []string{"go vet ./...", "go test \\\n  ./...\n"},
						Timeout:    90 * time.Minute,
						WorkingDir: "app",
						Retries:    5,
					},
					{Name: "lint", Commands: []string{"golangci-lint run"}, Timeout: 24 * time.Hour, DependsOn: []string{"test"}},
				},
			},
		},
		{
			name: "scalars kept as written, null env, document markers, CRLF",
			in: "---\r\n# comment\r\nname: 2024\r\nenv:\r\n  # A: 1\r\nsteps:\r\n- name: 'true'\r\n" +
				"  env: {FLOAT: 1.50, HEX: 0x1F, EMPTY: \"\", _low: yes}\r\n  commands: [\"exit 0\", 42]\r\n" +
				"  workingDir: a/b/../../c//d\r\n...\r\n",
			want: Pipeline{Version: 1, Name: "2024", Steps: []Step{{
				Name: "true",
				Env: []EnvVar{
					{Name: "EMPTY", Value: ""}, {Name: "FLOAT", Value: "1.50"},
					{Name: "HEX", Value: "0x1F"}, {Name: "_low", Value: "yes"},
				},
				Commands:   []string{"exit 0", "42"},
				WorkingDir: "c/d",
			}}},
		},
		{
			name: "exactly MaxFileSize bytes",
			in:   seedFile + "#" + strings.Repeat("x", MaxFileSize-len(seedFile)-2) + "\n",
			want: Pipeline{Version: 1, Name: "My First Pipeline", Steps: []Step{
				{Name: "Download dependencies", Commands: []string{"go mod download"}},
			}},
		},
		{
			name: "MaxSteps steps with MaxCommandsPerStep commands",
			in:   manySteps(MaxSteps, MaxCommandsPerStep),
			want: Pipeline{Version: 1, Name: "big", Steps: wantManySteps(MaxSteps, MaxCommandsPerStep)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			def, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, def.Pipeline); diff != "" {
				t.Errorf("Pipeline mismatch (-want +got):\n%s", diff)
			}
			sum := sha256.Sum256([]byte(tt.in))
			if want := "sha256:" + hex.EncodeToString(sum[:]); def.Digest != want {
				t.Errorf("Digest = %q, want %q", def.Digest, want)
			}
		})
	}
}

func TestParseDigestOfSeed(t *testing.T) {
	def, err := Parse([]byte(seedFile))
	if err != nil {
		t.Fatal(err)
	}
	const want = "sha256:b5ea776db03c396d5b3986e85063d1d5bfa98cd71f66140dc46582f7cb9cad9e"
	if def.Digest != want {
		t.Errorf("Digest = %q, want %q", def.Digest, want)
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty file", "", "file is empty"},
		{"only comments", "# nothing here\n\n", "file is empty"},
		{"oversized file", seedFile + "#" + strings.Repeat("x", MaxFileSize) + "\n",
			fmt.Sprintf("file is %d bytes, larger than the limit of 262144", len(seedFile)+MaxFileSize+2)},
		{"syntax error", "name: [p\nsteps: x\n", "invalid YAML: did not find expected ',' or ']' (line 1)"},
		{"multiple documents", seedFile + "---\n" + seedFile, "multiple YAML documents are not supported (line 6)"},
		{"empty second document", seedFile + "---\n", "multiple YAML documents are not supported (line 6)"},
		{"top level list", "- name: p\n", "top level must be a mapping, got a list (line 1)"},
		{"top level null", "---\n~\n", "top level must be a mapping, got null (line 2)"},
		{"missing name and steps", "{}\n", "name: is required (line 1); steps: is required (line 1)"},
		{"unknown fields", "name: p\nstage: 1\nsteps:\n- name: a\n  comands:\n  - x\n",
			"stage: unknown field (line 2); steps[0].commands: is required (line 4); steps[0].comands: unknown field (line 5)"},
		{"odd keys are quoted in paths", "name: p\n\"a b\\n\": 1\n[x]: 2\nsteps: [{name: a, commands: [x]}]\n",
			`["a b\n"]: unknown field (line 2); keys must be strings, got a list (line 3)`},
		{"duplicate keys", "name: p\nname: q\nsteps:\n- {name: a, commands: [x], commands: [y]}\n",
			"name: duplicate key, first defined on line 1 (line 2); steps[0].commands: duplicate key, first defined on line 4 (line 4)"},
		{"empty commands", "name: p\nsteps:\n- name: a\n  commands: []\n- name: b\n  commands:\n",
			"steps[0].commands: must not be empty (line 4); steps[1].commands: must not be empty (line 6)"},
		{"blank and null commands", "name: p\nsteps:\n- name: a\n  commands:\n  - \"  \"\n  -\n  - echo: hi\n  - \"a\\0b\"\n",
			"steps[0].commands[0]: must not be empty (line 5); steps[0].commands[1]: must be a string, got null (line 6); " +
				"steps[0].commands[2]: must be a string, got a mapping (line 7); steps[0].commands[3]: must not contain NUL characters (line 8)"},
		{"no steps", "name: p\nsteps: []\n", "steps: must have at least one step (line 2)"},
		{"duplicate step names", "name: p\nsteps:\n- {name: build, commands: [a]}\n- {name: Build, commands: [b]}\n- {name: build, commands: [c]}\n",
			`steps[2].name: duplicate step name "build", already used by steps[0] (line 5)`},
		{"bad names", "name: \" \"\nsteps:\n- {name: \"a\\tb\", commands: [a]}\n- {name: " + strings.Repeat("n", 64) + ", commands: [b]}\n- {commands: [c]}\n",
			"name: must not be empty (line 1); steps[0].name: must not contain control characters (line 3); " +
				"steps[1].name: must be at most 63 bytes, got 64 (line 4); steps[2].name: is required (line 5)"},
		{"bad env names", "name: p\nenv:\n  1FOO: x\n  FOO-BAR: x\n  FLOWCI_RUN: x\n  \"\": x\n  OK: [1]\nsteps:\n- name: a\n  env: {flowci_ok: 1, FLOWCI_: 2}\n  commands: [x]\n",
			"env.1FOO: invalid name, must match [A-Za-z_][A-Za-z0-9_]* (line 3); env.FOO-BAR: invalid name, must match [A-Za-z_][A-Za-z0-9_]* (line 4); " +
				"env.FLOWCI_RUN: the FLOWCI_ prefix is reserved for the operator (line 5); env[\"\"]: invalid name, must match [A-Za-z_][A-Za-z0-9_]* (line 6); " +
				"env.OK: must be a string, got a list (line 7); steps[0].env.FLOWCI_: the FLOWCI_ prefix is reserved for the operator (line 10)"},
		{"bad images", "name: p\nimage: Ubuntu:latest\nsteps:\n- {name: a, image: \"golang:1.26@sha256:abc\", commands: [x]}\n- {name: b, image: \"\", commands: [x]}\n" +
			"- {name: c, image: \"my_registry:5000/x\", commands: [x]}\n- {name: d, image: \"a:-x\", commands: [x]}\n",
			`image: invalid image reference "Ubuntu:latest": repository name (library/Ubuntu) must be lowercase (line 2); ` +
				`steps[0].image: invalid image reference "golang:1.26@sha256:abc": invalid reference format (line 4); ` +
				`steps[1].image: must not be empty (line 5); ` +
				`steps[2].image: invalid image reference "my_registry:5000/x": invalid reference format (line 6); ` +
				`steps[3].image: invalid image reference "a:-x": invalid reference format (line 7)`},
		{"bad durations", "name: p\nsteps:\n- {name: a, commands: [x], timeout: 10}\n- {name: b, commands: [x], timeout: -1s}\n- {name: c, commands: [x], timeout: 24h0m1s}\n- {name: d, commands: [x], timeout: 0s}\n",
			`steps[0].timeout: must be a duration such as "10m" or "1h30m", got "10" (line 3); steps[1].timeout: must be greater than 0 (line 4); ` +
				`steps[2].timeout: must be at most 24h (line 5); steps[3].timeout: must be greater than 0 (line 6)`},
		{"bad working dirs", "name: p\nsteps:\n- {name: a, commands: [x], workingDir: ../x}\n- {name: b, commands: [x], workingDir: a/../../b}\n- {name: c, commands: [x], workingDir: /src}\n- {name: d, commands: [x], workingDir: \"\"}\n- {name: e, commands: [x], workingDir: [a]}\n",
			"steps[0].workingDir: must not escape the repository root (line 3); steps[1].workingDir: must not escape the repository root (line 4); " +
				"steps[2].workingDir: must be relative to the repository root (line 5); steps[3].workingDir: must not be empty; omit it to use the repository root (line 6); " +
				"steps[4].workingDir: must be a string, got a list (line 7)"},
		{"bad retries", "name: p\nsteps:\n- {name: a, commands: [x], retries: 6}\n- {name: b, commands: [x], retries: -1}\n- {name: c, commands: [x], retries: 1.5}\n- {name: d, commands: [x], retries: \"2\"}\n- {name: e, commands: [x], retries: 99999999999999999999}\n",
			"steps[0].retries: must be between 0 and 5, got 6 (line 3); steps[1].retries: must be between 0 and 5, got -1 (line 4); " +
				"steps[2].retries: must be an integer, got a number (line 5); steps[3].retries: must be an integer, got a string (line 6); " +
				"steps[4].retries: must be an integer, got a number (line 7)"},
		{"version 2", "version: 2\n" + seedFile, "version: unsupported version 2, only 1 is supported (line 1)"},
		{"version as string", "version: \"1\"\n" + seedFile, "version: must be an integer, got a string (line 1)"},
		{"wrong kinds", "name: [p]\nenv: [A=1]\nimage: {}\nsteps:\n- name: a\n  commands: go test\n- just a string\n",
			"name: must be a string, got a list (line 1); env: must be a mapping, got a list (line 2); image: must be a string, got a mapping (line 3); " +
				"steps[0].commands: must be a list, got a string (line 6); steps[1]: must be a mapping, got a string (line 7)"},
		{"steps as string", "name: p\nsteps: build\n", "steps: must be a list, got a string (line 2)"},
		{"custom tags", "name: !secret p\nsteps:\n- {name: a, commands: [!!binary aGk=]}\n",
			`name: must be a string, got a value tagged "!secret" (line 1); steps[0].commands[0]: must be a string, got a value tagged "!!binary" (line 3)`},
		{"too many steps", manySteps(MaxSteps+1, 1), "steps: must have at most 100 steps, got 101 (line 3)"},
		{"too many commands", manySteps(1, MaxCommandsPerStep+1), "steps[0].commands: must have at most 200 commands, got 201 (line 5)"},
		{"billion laughs", billionLaughs, "lol1: anchors and aliases are not supported (line 1)"},
		{"alias in a valid position", "name: p\nenv:\n  A: &v hello\n  B: *v\nsteps: [{name: a, commands: [x]}]\n",
			"env.A: anchors and aliases are not supported (line 3)"},
		{"merge key", "name: p\nsteps:\n- &base {name: a, commands: [x]}\n- <<: *base\n  name: b\n",
			"steps[0]: anchors and aliases are not supported (line 3)"},
		{"deep nesting", "name: p\nsteps: [{name: a, commands: [x]}]\nx: " + strings.Repeat("[", 30) + strings.Repeat("]", 30) + "\n",
			"x[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]: nested deeper than 20 levels (line 3)"},
		{"problems are bounded", manyBadCommands(25),
			"steps[0].commands[0]: must not be empty (line 5); steps[0].commands[1]: must not be empty (line 6); steps[0].commands[2]: must not be empty (line 7); " +
				"steps[0].commands[3]: must not be empty (line 8); steps[0].commands[4]: must not be empty (line 9); steps[0].commands[5]: must not be empty (line 10); " +
				"steps[0].commands[6]: must not be empty (line 11); steps[0].commands[7]: must not be empty (line 12); steps[0].commands[8]: must not be empty (line 13); " +
				"steps[0].commands[9]: must not be empty (line 14); steps[0].commands[10]: must not be empty (line 15); steps[0].commands[11]: must not be empty (line 16); " +
				"steps[0].commands[12]: must not be empty (line 17); steps[0].commands[13]: must not be empty (line 18); steps[0].commands[14]: must not be empty (line 19); " +
				"steps[0].commands[15]: must not be empty (line 20); steps[0].commands[16]: must not be empty (line 21); steps[0].commands[17]: must not be empty (line 22); " +
				"steps[0].commands[18]: must not be empty (line 23); steps[0].commands[19]: must not be empty (line 24); 5 more problems not shown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			def, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse succeeded with %+v, want error %q", def.Pipeline, tt.want)
			}
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("error is %T, want *Error", err)
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{Path: "steps[2].commands", Line: 14, Msg: "must not be empty"}, "steps[2].commands: must not be empty (line 14)"},
		{Problem{Path: "name", Msg: "is required"}, "name: is required"},
		{Problem{Line: 3, Msg: "multiple YAML documents are not supported"}, "multiple YAML documents are not supported (line 3)"},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, tt.p.String()); diff != "" {
			t.Errorf("String() mismatch (-want +got):\n%s", diff)
		}
	}
}

func TestStepImage(t *testing.T) {
	p := &Pipeline{Image: "golang:1.26", Steps: []Step{{Image: "alpine:3"}, {}}}
	noDefault := &Pipeline{Steps: []Step{{}}}
	tests := []struct {
		name string
		p    *Pipeline
		i    int
		want string
	}{
		{"step image wins", p, 0, "alpine:3"},
		{"pipeline image next", p, 1, "golang:1.26"},
		{"operator default last", noDefault, 0, "busybox:1"},
	}
	for _, tt := range tests {
		if got := tt.p.StepImage(tt.i, "busybox:1"); got != tt.want {
			t.Errorf("%s: StepImage = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestCheckImageRef(t *testing.T) {
	valid := []string{
		"alpine", "alpine:3.20", "library/alpine", "ghcr.io/flow-ci/runner:v0.1.0",
		"localhost/app", "localhost:5000/app:dev", "registry.example.com:443/a/b/c",
		"a__b/c.d/e-f/g--h:T_1", "alpine@sha256:" + digest64, "alpine:3@sha256:" + digest64,
		"10.0.0.1:5000/x", "My-Registry.example/x",
	}
	for _, ref := range valid {
		if why := checkImageRef(ref); why != "" {
			t.Errorf("checkImageRef(%q) = %q, want valid", ref, why)
		}
	}
	invalid := []string{
		"Alpine", "alpine:", ":3", "alpine::3", "/alpine", "alpine/", "a//b", "a/_b", "a.-b",
		"alpine@sha256:" + strings.ToUpper(digest64), "alpine@sha512:" + digest64, "alpine@",
		"-bad.example/x", "host:port/x", "alpine:" + strings.Repeat("t", 129),
		"a/" + strings.Repeat("b", 254), "a b", "alpine:3 ", "alpine@sha256:" + digest64 + "@sha256:" + digest64,
	}
	for _, ref := range invalid {
		if why := checkImageRef(ref); why == "" {
			t.Errorf("checkImageRef(%q) accepted an invalid reference", ref)
		}
	}
}

// manySteps renders n steps of c commands each.
func manySteps(n, c int) string {
	var b strings.Builder
	b.WriteString("name: big\nsteps:\n")
	for i := range n {
		fmt.Fprintf(&b, "- name: s%d\n  commands:\n", i)
		for j := range c {
			fmt.Fprintf(&b, "  - echo %d\n", j)
		}
	}
	return b.String()
}

func wantManySteps(n, c int) []Step {
	steps := make([]Step, n)
	for i := range steps {
		steps[i].Name = fmt.Sprintf("s%d", i)
		if i > 0 {
			steps[i].DependsOn = []string{fmt.Sprintf("s%d", i-1)}
		}
		for j := range c {
			steps[i].Commands = append(steps[i].Commands, fmt.Sprintf("echo %d", j))
		}
	}
	return steps
}

// manyBadCommands renders one step with n blank commands, one problem each.
func manyBadCommands(n int) string {
	return "name: p\nsteps:\n- name: a\n  commands:\n" + strings.Repeat("  - \"\"\n", n)
}

// billionLaughs expands to 10^9 strings if aliases are followed.
var billionLaughs = func() string {
	var b strings.Builder
	b.WriteString(`lol1: &lol1 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]` + "\n")
	for i := 2; i <= 9; i++ {
		fmt.Fprintf(&b, "lol%d: &lol%d [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "*lol%d", i-1)
		}
		b.WriteString("]\n")
	}
	b.WriteString("name: p\nsteps: [{name: a, commands: *lol9}]\n")
	return b.String()
}()
