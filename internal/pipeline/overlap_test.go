package pipeline

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMayOverlap(t *testing.T) {
	cases := []struct {
		name  string
		steps string // one step per line: name [deps...]; "-" for dependsOn: []
		final []string
		pairs []string // the overlapping pairs, "a|b" with a before b in the file
	}{
		{"the seed file runs in sequence", "a\nb\nc", nil, nil},
		{"the diamond with deps", "a\nb a\nc a\nd b c", nil, []string{"b|c"}},
		{"a step alone overlaps a chain", "a\nb a\nc b\nd -", nil, []string{"a|d", "b|d", "c|d"}},
		{"roots overlap", "a -\nb -", nil, []string{"a|b"}},
		{"finally steps overlap each other, not the graph", "a\nb -", []string{"x", "y"}, []string{"a|b", "x|y"}},
		{"one finally step runs alone", "a\nb", []string{"x"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			b.WriteString("name: t\nsteps:\n")
			for _, line := range strings.Split(tc.steps, "\n") {
				f := strings.Fields(line)
				b.WriteString("- name: " + f[0] + "\n  commands: [x]\n")
				switch {
				case len(f) == 2 && f[1] == "-":
					b.WriteString("  dependsOn: []\n")
				case len(f) > 1:
					b.WriteString("  dependsOn: [" + strings.Join(f[1:], ", ") + "]\n")
				}
			}
			if len(tc.final) > 0 {
				b.WriteString("finally:\n")
				for _, n := range tc.final {
					b.WriteString("- {name: " + n + ", commands: [x]}\n")
				}
			}
			def, err := Parse([]byte(b.String()))
			if err != nil {
				t.Fatalf("%v\n%s", err, b.String())
			}
			p := &def.Pipeline
			m := p.MayOverlap()
			var pairs []string
			for i := range m {
				for j := range m[i] {
					if m[i][j] != m[j][i] {
						t.Fatalf("not symmetric at %d,%d", i, j)
					}
					if i < j && m[i][j] {
						pairs = append(pairs, p.Step(i).Name+"|"+p.Step(j).Name)
					}
				}
			}
			if diff := cmp.Diff(tc.pairs, pairs); diff != "" {
				t.Errorf("overlapping pairs (-want +got):\n%s", diff)
			}
			x, y, ok := p.Parallel()
			if ok != (len(tc.pairs) > 0) || ok && x+"|"+y != tc.pairs[0] {
				t.Errorf("Parallel() = %q, %q, %v", x, y, ok)
			}
		})
	}
}
