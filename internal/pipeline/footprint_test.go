package pipeline

import (
	"strings"
	"testing"
)

// TestFootprint: a parsed pipeline is charged at least its text; a matrix that copies a
// large env into each combination is charged for every copy, far above the file's size.
func TestFootprint(t *testing.T) {
	big := strings.Repeat("x", 8<<10)
	for _, c := range []struct {
		name     string
		file     string
		min, max int64
	}{
		{"the original format", "name: My First Pipeline\nsteps:\n- name: Test\n  commands:\n  - make test\n", 512, 1024},
		{"a matrix copies its env", "name: m\nsteps:\n- name: t\n  env: {BIG: " + big + "}\n  matrix: {a: [1, 2, 3, 4, 5, 6, 7, 8], b: [1, 2, 3, 4, 5, 6, 7, 8]}\n  commands: [x]\n",
			64 * 8 << 10, 64 * (8<<10 + 1024)},
	} {
		t.Run(c.name, func(t *testing.T) {
			def, err := Parse([]byte(c.file))
			if err != nil {
				t.Fatal(err)
			}
			if got := def.Pipeline.Footprint(); got < c.min || got > c.max {
				t.Errorf("Footprint = %d, want within [%d, %d] (file %d bytes)", got, c.min, c.max, len(c.file))
			}
		})
	}
}
