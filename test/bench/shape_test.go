package bench

import (
	"fmt"
	"strings"
)

// shape is a pipeline's graph: deps[k] are the steps step k waits for. "seqN" is N
// sequential steps; "par141" is one step, four after it side by side, and one after
// all four.
type shape struct {
	name string
	deps [][]int
}

func shapeOf(name string) shape {
	if name == "par141" {
		return shape{name, [][]int{{}, {0}, {0}, {0}, {0}, {1, 2, 3, 4}}}
	}
	var n int
	_, _ = fmt.Sscanf(name, "seq%d", &n)
	s := shape{name: name, deps: make([][]int, n)}
	for i := 1; i < n; i++ {
		s.deps[i] = []int{i - 1}
	}
	return s
}

func (s shape) steps() int { return len(s.deps) }

// yaml is the shape's pipeline file. Sequential shapes use the original format, with
// no dependsOn.
func (s shape) yaml() string {
	var b strings.Builder
	b.WriteString("name: bench\nsteps:\n")
	for i, deps := range s.deps {
		fmt.Fprintf(&b, "- name: s%d\n", i)
		if strings.HasPrefix(s.name, "par") {
			names := make([]string, len(deps))
			for n, d := range deps {
				names[n] = fmt.Sprintf("s%d", d)
			}
			fmt.Fprintf(&b, "  dependsOn: [%s]\n", strings.Join(names, ", "))
		}
		fmt.Fprintf(&b, "  commands:\n  - echo %d\n", i)
	}
	return b.String()
}

// roots are the steps that wait for nothing but the clone.
func (s shape) roots() []int {
	var out []int
	for k, deps := range s.deps {
		if len(deps) == 0 {
			out = append(out, k)
		}
	}
	return out
}

// readyAfter are the steps that may start once step done has completed, given the
// steps completed so far (done included).
func (s shape) readyAfter(done int, completed map[int]bool) []int {
	var out []int
	for k, deps := range s.deps {
		waits, all := false, len(deps) > 0
		for _, d := range deps {
			waits = waits || d == done
			all = all && completed[d]
		}
		if waits && all {
			out = append(out, k)
		}
	}
	return out
}
