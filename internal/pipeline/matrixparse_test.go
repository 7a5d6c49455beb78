package pipeline

import (
	"reflect"
	"strings"
	"testing"
)

const matrixFile = `name: m
steps:
- name: lint
  commands: [make lint]
- name: test
  image: golang:${{ matrix.go }}-${{ matrix.os }}
  env:
    LABEL: go${{ matrix.go }}
  matrix:
    go: ["1.25", "1.26"]
    os: [alpine, debian]
    exclude:
    - {go: "1.25", os: debian}
  commands: [go test ./...]
- name: report
  commands: [echo done]
`

// TestParseMatrix: a matrix step becomes one step per combination, each after the step
// before the matrix step, with its values in its image and env; the step after it
// depends on every combination; errors name the file's item.
func TestParseMatrix(t *testing.T) {
	def, err := Parse([]byte(matrixFile))
	if err != nil {
		t.Fatal(err)
	}
	p := def.Pipeline
	var names []string
	for _, s := range p.Steps {
		names = append(names, s.Name)
	}
	want := []string{"lint", "test [go=1.25, os=alpine]", "test [go=1.26, os=alpine]", "test [go=1.26, os=debian]", "report"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("steps %q", names)
	}
	s := p.Steps[3]
	if s.Image != "golang:1.26-debian" || !reflect.DeepEqual(s.DependsOn, []string{"lint"}) {
		t.Errorf("image %q, dependsOn %v", s.Image, s.DependsOn)
	}
	if !reflect.DeepEqual(s.Env, []EnvVar{{"LABEL", "go1.26"}, {"MATRIX_GO", "1.26"}, {"MATRIX_OS", "debian"}}) {
		t.Errorf("env %v", s.Env)
	}
	if got := p.Steps[4].DependsOn; !reflect.DeepEqual(got, want[1:4]) {
		t.Errorf("report depends on %v", got)
	}
	if p.Path(3) != "steps[1]" || p.Path(4) != "steps[2]" {
		t.Errorf("paths %s, %s", p.Path(3), p.Path(4))
	}

	big := "{a: [1, 2, 3, 4, 5, 6, 7, 8], b: [1, 2, 3, 4, 5, 6, 7, 8]}"
	for _, c := range []struct{ name, in, want string }{
		{"an unknown axis in image", strings.Replace(matrixFile, "matrix.os }}", "matrix.arch }}", 1), `steps[1].image: ${{ matrix.arch }}: the matrix has no axis "arch" (line 6)`},
		{"the matrix's own variable", strings.Replace(matrixFile, "LABEL:", "MATRIX_GO:", 1), "steps[1].env: MATRIX_GO is set by the matrix (line 8)"},
		{"an axis that is not a list", strings.Replace(matrixFile, "os: [alpine, debian]", "os: alpine", 1), "steps[1].matrix.os: must be a list of values, got a string (line 11)"},
		{"everything excluded", strings.Replace(matrixFile, `- {go: "1.25", os: debian}`, "- {os: debian}\n    - {os: alpine}", 1), "steps[1].matrix: the matrix excludes every combination (line 10)"},
		{"names too long", strings.Replace(matrixFile, "alpine, debian", strings.Repeat("x", 50)+", debian", 1), "are longer than 63 characters (line 10)"},
		{"too many steps once expanded", manySteps(MaxSteps-1, 1) + "- name: m\n  matrix: {a: [1, 2]}\n  commands: [x]\n", "once their matrices are expanded"},
		{"too many finally steps and no steps key (no panic)", "name: m\nfinally:\n- {name: a, matrix: " + big + ", commands: [x]}\n- {name: b, matrix: " + big + ", commands: [x]}\n",
			"steps: is required (line 1)"},
		{"an expanded name equal to a step's", matrixFile + "- name: \"test [go=1.26, os=debian]\"\n  commands: [x]\n", "is used twice once the matrices are expanded"},
		{"a value with the name's punctuation", strings.Replace(matrixFile, `"1.26"]`, `"1.26, os=debian"]`, 1), "has one of [ ] , ="},
		{"an include value with a newline", strings.Replace(matrixFile, "    exclude:", "    include:\n    - {go: \"a\\nb\", os: alpine}\n    exclude:", 1), "has a control character"},
		{"an include with a bad axis name", "name: m\nsteps:\n- {name: t, matrix: {include: [{\"a=b\": 1}]}, commands: [x]}\n", "a name is lower case letters"},
		{"an upper-case reference", strings.Replace(matrixFile, "go${{ matrix.go }}", "go${{ matrix.GO }}", 1), `no axis "GO"`},
		{"too many includes", "name: m\nsteps:\n- {name: t, matrix: {a: [x], include: [" + strings.Repeat("{a: y},", 65) + "]}, commands: [x]}\n", "at most 64 entries"},
		{"env too large once substituted", strings.Replace(matrixFile, "go${{ matrix.go }}", strings.Repeat("${{ matrix.os }}", 12000), 1), "more than 65536 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v\nwant %q", err, c.want)
			}
		})
	}
}
