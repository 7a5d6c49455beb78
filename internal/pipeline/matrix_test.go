package pipeline

import (
	"reflect"
	"strings"
	"testing"
)

func combo(kv ...string) Combination {
	c := Combination{}
	for i := 0; i+1 < len(kv); i += 2 {
		c = append(c, AxisValue{kv[i], kv[i+1]})
	}
	return c
}

func TestMatrixExpand(t *testing.T) {
	goOS := []Axis{{"go", []string{"1.25", "1.26"}}, {"os", []string{"alpine", "debian"}}}
	many := make([]string, 9)
	for i := range many {
		many[i] = strings.Repeat("v", i+1)
	}
	for _, c := range []struct {
		name string
		m    Matrix
		want []string // step names of "t"
		err  string
	}{
		{"2 × 2, first axis slowest", Matrix{Axes: goOS}, []string{
			"t [go=1.25, os=alpine]", "t [go=1.25, os=debian]", "t [go=1.26, os=alpine]", "t [go=1.26, os=debian]"}, ""},
		{"exclude by one axis", Matrix{Axes: goOS, Exclude: []Combination{combo("os", "debian")}}, []string{
			"t [go=1.25, os=alpine]", "t [go=1.26, os=alpine]"}, ""},
		{"exclude one combination", Matrix{Axes: goOS, Exclude: []Combination{combo("go", "1.25", "os", "debian")}}, []string{
			"t [go=1.25, os=alpine]", "t [go=1.26, os=alpine]", "t [go=1.26, os=debian]"}, ""},
		{"include a new one", Matrix{Axes: goOS, Include: []Combination{combo("go", "1.27", "os", "alpine")}}, []string{
			"t [go=1.25, os=alpine]", "t [go=1.25, os=debian]", "t [go=1.26, os=alpine]", "t [go=1.26, os=debian]", "t [go=1.27, os=alpine]"}, ""},
		{"include one that is there", Matrix{Axes: goOS, Include: []Combination{combo("go", "1.25", "os", "alpine")}}, []string{
			"t [go=1.25, os=alpine]", "t [go=1.25, os=debian]", "t [go=1.26, os=alpine]", "t [go=1.26, os=debian]"}, ""},
		{"include brings back an excluded one", Matrix{Axes: goOS, Exclude: []Combination{combo("os", "debian")},
			Include: []Combination{combo("go", "1.26", "os", "debian")}}, []string{
			"t [go=1.25, os=alpine]", "t [go=1.26, os=alpine]", "t [go=1.26, os=debian]"}, ""},
		{"no axis", Matrix{}, nil, "no axis"},
		{"includes only", Matrix{Include: []Combination{combo("go", "1.26"), combo("go", "1.27")}}, []string{
			"t [go=1.26]", "t [go=1.27]"}, ""},
		{"a bad axis name", Matrix{Axes: []Axis{{"Go-Version", []string{"1"}}}}, nil, "lower case"},
		{"an axis twice", Matrix{Axes: []Axis{{"go", []string{"1"}}, {"go", []string{"2"}}}}, nil, "listed twice"},
		{"a value twice", Matrix{Axes: []Axis{{"go", []string{"1", "1"}}}}, nil, `lists "1" twice`},
		{"an empty axis", Matrix{Axes: []Axis{{"go", nil}}}, nil, "needs 1 to"},
		{"an include missing an axis", Matrix{Axes: goOS, Include: []Combination{combo("go", "1.27")}}, nil, `include[0]: no value for axis "os"`},
		{"an exclude of an unknown axis", Matrix{Axes: goOS, Exclude: []Combination{combo("arch", "arm")}}, nil, `exclude[0]: no axis "arch"`},
		{"an include in another order", Matrix{Axes: goOS, Include: []Combination{combo("os", "alpine", "go", "1.27")}}, []string{
			"t [go=1.25, os=alpine]", "t [go=1.25, os=debian]", "t [go=1.26, os=alpine]", "t [go=1.26, os=debian]", "t [go=1.27, os=alpine]"}, ""},
		{"an axis named twice in an entry", Matrix{Axes: goOS, Exclude: []Combination{combo("go", "1", "go", "2")}}, nil, "named twice"},
		{"everything excluded", Matrix{Axes: goOS, Exclude: []Combination{combo("go", "1.25"), combo("go", "1.26")}}, nil, "excludes every"},
		{"too many combinations", Matrix{Axes: []Axis{{"a", many}, {"b", many}}}, nil, "more than 64"},
		{"a product too large to build", Matrix{Axes: []Axis{{"a", many}, {"b", many}, {"c", many}, {"d", many}}}, nil, "more than 256"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.m.Expand(MaxCombinations)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, cb := range got {
				names = append(names, cb.StepName("t"))
			}
			if !reflect.DeepEqual(names, c.want) {
				t.Errorf("names\n%q\nwant\n%q", names, c.want)
			}
		})
	}
}

func TestCombinationEnvAndSubstitute(t *testing.T) {
	c := combo("go", "1.26", "os", "alpine")
	if got, want := c.Env(), []EnvVar{{"MATRIX_GO", "1.26"}, {"MATRIX_OS", "alpine"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("env %v, want %v", got, want)
	}
	for _, s := range []struct{ in, want, err string }{
		{"golang:${{ matrix.go }}-${{matrix.os}}", "golang:1.26-alpine", ""},
		{"no reference", "no reference", ""},
		{"${{ matrix.arch }}", "", `no axis "arch"`},
		{"${{ env.HOME }}", "${{ env.HOME }}", ""},
	} {
		got, err := c.Substitute(s.in)
		switch {
		case s.err != "" && (err == nil || !strings.Contains(err.Error(), s.err)):
			t.Errorf("%q: error %v, want %q", s.in, err, s.err)
		case s.err == "" && (err != nil || got != s.want):
			t.Errorf("%q = %q, %v; want %q", s.in, got, err, s.want)
		}
	}
}
