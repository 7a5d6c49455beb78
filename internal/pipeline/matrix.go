package pipeline

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
)

// A step's matrix expands it into one step per combination of its axes' values, once
// the file's graph is checked (matrixparse.go). This file holds the combinations, their
// names, their environment and the substitution into image and env values.

// Limits of a matrix.
const (
	MaxMatrixAxes   = 8
	MaxAxisValues   = 32
	MaxCombinations = 64
	// MaxMatrixEnvBytes bounds one combination's env values once substituted.
	MaxMatrixEnvBytes = 64 << 10
	// MatrixEnvPrefix starts the variable each axis is exported as: MATRIX_GO for go.
	MatrixEnvPrefix = "MATRIX_"
)

// Matrix is a step's matrix: its axes in the file's order, and the combinations its
// include list adds and its exclude list drops.
type Matrix struct {
	Axes    []Axis
	Include []Combination
	Exclude []Combination
}

// Axis is one dimension of a matrix.
type Axis struct {
	Name   string
	Values []string
}

// Combination is one expanded step's values, one per axis in the matrix's order (an
// exclude entry may name fewer: it drops every combination that has its values).
type Combination []AxisValue

// AxisValue is one axis's value in a combination.
type AxisValue struct {
	Axis, Value string
}

var axisName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,29}$`)

// Expand returns the matrix's combinations: the product of its axes, the first axis
// varying slowest, less those an exclude entry matches, then each include entry that
// is not there yet. It fails when the matrix is malformed or has more than max
// combinations.
func (m Matrix) Expand(max int) ([]Combination, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	// The product is bounded before it is built: excludes may shrink it, but a file must
	// not make the operator build 32^8 combinations to find that out.
	size := 1
	for _, a := range m.Axes {
		if size *= len(a.Values); size > max*4 {
			return nil, fmt.Errorf("the matrix's axes make more than %d combinations", max*4)
		}
	}
	var out []Combination
	if len(m.Axes) > 0 {
		out = []Combination{{}}
	}
	for _, a := range m.Axes {
		next := make([]Combination, 0, len(out)*len(a.Values))
		for _, c := range out {
			for _, v := range a.Values {
				next = append(next, append(append(Combination{}, c...), AxisValue{a.Name, v}))
			}
		}
		out = next
	}
	kept := out[:0]
	for _, c := range out {
		if !m.excluded(c) {
			kept = append(kept, c)
		}
	}
	for _, inc := range m.Include {
		if inc = m.inAxisOrder(inc); !contains(kept, inc) {
			kept = append(kept, inc)
		}
		if len(kept) > max {
			break
		}
	}
	if len(kept) > max {
		return nil, fmt.Errorf("the matrix has %d combinations, more than %d", len(kept), max)
	}
	if len(kept) == 0 {
		return nil, fmt.Errorf("the matrix excludes every combination")
	}
	return kept, nil
}

// check validates the axes and the include and exclude entries against them.
func (m Matrix) check() error {
	if len(m.Axes) == 0 && len(m.Include) == 0 {
		return fmt.Errorf("the matrix has no axis")
	}
	if len(m.Axes) > MaxMatrixAxes {
		return fmt.Errorf("the matrix has %d axes, more than %d", len(m.Axes), MaxMatrixAxes)
	}
	seen := map[string]bool{}
	for _, a := range m.Axes {
		switch {
		case !axisName.MatchString(a.Name):
			return fmt.Errorf("axis %s: a name is lower case letters, digits and _, starting with a letter, at most 30", quote(a.Name))
		case seen[a.Name]:
			return fmt.Errorf("axis %s is listed twice", quote(a.Name))
		case len(a.Values) == 0 || len(a.Values) > MaxAxisValues:
			return fmt.Errorf("axis %s has %d values; it needs 1 to %d", quote(a.Name), len(a.Values), MaxAxisValues)
		}
		seen[a.Name] = true
		if dup := firstDuplicate(a.Values); dup != "" {
			return fmt.Errorf("axis %s lists %s twice", quote(a.Name), quote(dup))
		}
		for _, val := range a.Values {
			if err := checkValue(val); err != nil {
				return fmt.Errorf("axis %s: %w", quote(a.Name), err)
			}
		}
	}
	if len(m.Include) > MaxCombinations || len(m.Exclude) > MaxCombinations {
		return fmt.Errorf("include and exclude have at most %d entries each", MaxCombinations)
	}
	for _, list := range []struct {
		key     string
		entries []Combination
		whole   bool
	}{{"include", m.Include, true}, {"exclude", m.Exclude, false}} {
		for i, c := range list.entries {
			if err := m.checkEntry(c, list.whole); err != nil {
				return fmt.Errorf("%s[%d]: %w", list.key, i, err)
			}
		}
	}
	return nil
}

// checkEntry checks an include entry (whole: a value for every axis) or an exclude
// entry (some of the axes), in any order; an axis named twice or not at all is refused.
func (m Matrix) checkEntry(c Combination, whole bool) error {
	for _, av := range c {
		if !axisName.MatchString(av.Axis) {
			return fmt.Errorf("axis %s: a name is lower case letters, digits and _, starting with a letter, at most 30", quote(av.Axis))
		}
		if err := checkValue(av.Value); err != nil {
			return fmt.Errorf("axis %s: %w", quote(av.Axis), err)
		}
	}
	if len(m.Axes) == 0 {
		if len(c) == 0 {
			return fmt.Errorf("it names no axis")
		}
		return nil // a matrix of includes only: each names its own
	}
	named := map[string]bool{}
	for _, av := range c {
		if named[av.Axis] {
			return fmt.Errorf("axis %s is named twice", quote(av.Axis))
		}
		named[av.Axis] = true
		if m.axis(av.Axis) < 0 {
			return fmt.Errorf("no axis %s", quote(av.Axis))
		}
	}
	for _, a := range m.Axes {
		if whole && !named[a.Name] {
			return fmt.Errorf("no value for axis %s", quote(a.Name))
		}
	}
	return nil
}

// checkValue refuses a value that would make a step's name ambiguous or break its
// environment: empty, control characters, or the name's own punctuation.
func checkValue(val string) error {
	switch {
	case val == "":
		return fmt.Errorf("a value must not be empty")
	case strings.ContainsFunc(val, unicode.IsControl):
		return fmt.Errorf("value %s has a control character", quote(val))
	case strings.ContainsAny(val, "[],="):
		return fmt.Errorf("value %s has one of [ ] , = (they punctuate the step's name)", quote(val))
	}
	return nil
}

// axis is the index of the named axis, or -1.
func (m Matrix) axis(name string) int {
	for i, a := range m.Axes {
		if a.Name == name {
			return i
		}
	}
	return -1
}

// inAxisOrder is an include entry with its values in the axes' order.
func (m Matrix) inAxisOrder(c Combination) Combination {
	out := append(Combination{}, c...)
	slices.SortStableFunc(out, func(a, b AxisValue) int { return m.axis(a.Axis) - m.axis(b.Axis) })
	return out
}

func (m Matrix) excluded(c Combination) bool {
	for _, ex := range m.Exclude {
		if matches(c, ex) {
			return true
		}
	}
	return false
}

// matches says c has every value of entry.
func matches(c, entry Combination) bool {
	for _, want := range entry {
		found := false
		for _, av := range c {
			if av == want {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func contains(list []Combination, c Combination) bool {
	for _, l := range list {
		if len(l) == len(c) && matches(l, c) {
			return true
		}
	}
	return false
}

func firstDuplicate(values []string) string {
	seen := map[string]bool{}
	for _, v := range values {
		if seen[v] {
			return v
		}
		seen[v] = true
	}
	return ""
}

// StepName is the expanded step's name: the step's, then the combination's values,
// "test [go=1.25, os=alpine]".
func (c Combination) StepName(base string) string {
	parts := make([]string, len(c))
	for i, av := range c {
		parts[i] = av.Axis + "=" + av.Value
	}
	return base + " [" + strings.Join(parts, ", ") + "]"
}

// Env is the combination as variables: MATRIX_GO=1.25 for axis go.
func (c Combination) Env() []EnvVar {
	out := make([]EnvVar, len(c))
	for i, av := range c {
		out[i] = EnvVar{Name: MatrixEnvPrefix + strings.ToUpper(av.Axis), Value: av.Value}
	}
	return out
}

var matrixRef = regexp.MustCompile(`\$\{\{\s*matrix\.([^\s}]*)\s*\}\}`)

// Substitute replaces each ${{ matrix.<axis> }} in s with the combination's value. A
// reference to an axis the combination does not have is an error, so a typo fails the
// file rather than run a step with the text left in.
func (c Combination) Substitute(s string) (string, error) {
	if !strings.Contains(s, "${{") {
		return s, nil
	}
	var missing string
	out := matrixRef.ReplaceAllStringFunc(s, func(ref string) string {
		axis := matrixRef.FindStringSubmatch(ref)[1]
		for _, av := range c {
			if av.Axis == axis {
				return av.Value
			}
		}
		if missing == "" {
			missing = axis
		}
		return ref
	})
	if missing != "" {
		return "", fmt.Errorf("${{ matrix.%s }}: the matrix has no axis %s", shorten(missing, maxShown), quote(missing))
	}
	return out, nil
}
