package pipeline

import (
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// matrix converts a step's matrix: a mapping of axes to lists of values, with the
// optional lists include (whole combinations) and exclude (any of the axes), each entry
// a mapping of axis to value. Axes keep the file's order.
func (v *validator) matrix(n *yaml.Node, mp string) *Matrix {
	pairs, ok := v.pairs(n, mp)
	if !ok {
		return nil
	}
	m := &Matrix{}
	for _, kv := range pairs {
		kp := keyPath(mp, kv.key.Value)
		switch kv.key.Value {
		case "include":
			m.Include = v.matrixEntries(kv.val, kp)
		case "exclude":
			m.Exclude = v.matrixEntries(kv.val, kp)
		default:
			m.Axes = append(m.Axes, Axis{Name: kv.key.Value, Values: v.axisValues(kv.val, kp)})
		}
	}
	if _, err := m.Expand(MaxCombinations); err != nil {
		v.add(n, mp, "%v", err)
		return nil
	}
	return m
}

func (v *validator) axisValues(n *yaml.Node, ap string) []string {
	if n.Kind != yaml.SequenceNode {
		v.add(n, ap, "must be a list of values, got %s", describe(n))
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, vn := range n.Content {
		if s, ok := v.text(vn, indexPath(ap, i)); ok {
			out = append(out, s) // checked by Matrix.Expand
		}
	}
	return out
}

func (v *validator) matrixEntries(n *yaml.Node, lp string) []Combination {
	if n.Kind != yaml.SequenceNode {
		v.add(n, lp, "must be a list of mappings of axis to value, got %s", describe(n))
		return nil
	}
	out := make([]Combination, 0, len(n.Content))
	for i, en := range n.Content {
		ep := indexPath(lp, i)
		pairs, ok := v.pairs(en, ep)
		if !ok {
			continue
		}
		c := Combination{}
		for _, kv := range pairs {
			if s, ok := v.text(kv.val, keyPath(ep, kv.key.Value)); ok {
				c = append(c, AxisValue{Axis: kv.key.Value, Value: s})
			}
		}
		out = append(out, c)
	}
	return out
}

// expandMatrices replaces each matrix step of list (key: "steps" or "finally") with one
// step per combination, once the graph of the file's steps is checked: each combination
// has the step's dependencies, and a step that depends on a matrix step depends on
// every combination of it. The combination's values are substituted into the step's
// image and env values, and added to its env as MATRIX_<AXIS>.
func (v *validator) expandMatrices(steps []Step, node *yaml.Node, key string) []Step {
	if !slices.ContainsFunc(steps, func(s Step) bool { return s.Matrix != nil }) {
		return steps // indices are the file's: Source stays 0
	}
	expanded := map[string][]string{}
	out := make([]Step, 0, len(steps))
	for i, s := range steps {
		s.Source = i + 1
		if s.Matrix == nil {
			out = append(out, s)
			continue
		}
		combos, err := s.Matrix.Expand(MaxCombinations)
		if err != nil {
			continue // reported by matrix
		}
		sp, it := indexPath(key, s.Source-1), item(node, s.Source-1)
		for _, c := range combos {
			e, ok := v.combinationStep(s, c, sp, it)
			if !ok {
				break
			}
			out = append(out, e)
			expanded[s.Name] = append(expanded[s.Name], e.Name)
		}
	}
	for i := range out {
		var deps []string
		for _, d := range out[i].DependsOn {
			if names, ok := expanded[d]; ok {
				deps = append(deps, names...)
			} else {
				deps = append(deps, d)
			}
		}
		if out[i].DependsOn != nil {
			out[i].DependsOn = append([]string{}, deps...)
		}
	}
	return out
}

// combinationStep is step s for combination c; sp and it are the file's item.
func (v *validator) combinationStep(s Step, c Combination, sp string, it *yaml.Node) (Step, bool) {
	e := s
	e.Matrix, e.Combination = nil, c
	e.Name = c.StepName(s.Name)
	if len(e.Name) > maxStepNameLen {
		v.add(fieldNode(it, "matrix"), sp+".matrix", "the step's names with its values, such as %s, are longer than %d characters", quote(e.Name), maxStepNameLen)
		return Step{}, false
	}
	var err error
	if e.Image, err = c.Substitute(s.Image); err != nil {
		v.add(fieldNode(it, "image"), sp+".image", "%v", err)
		return Step{}, false
	}
	if why := checkImageRef(e.Image); matrixRef.MatchString(s.Image) && why != "" {
		v.add(fieldNode(it, "image"), sp+".image", "invalid image reference %s for %s: %s", quote(e.Image), quote(e.Name), why)
		return Step{}, false
	}
	env := make([]EnvVar, 0, len(s.Env)+len(c))
	size := 0
	for _, kv := range s.Env {
		if strings.HasPrefix(kv.Name, MatrixEnvPrefix) {
			v.add(fieldNode(it, "env"), sp+".env", "%s is set by the matrix", kv.Name)
			return Step{}, false
		}
		if kv.Value, err = c.Substitute(kv.Value); err != nil {
			v.add(fieldNode(it, "env"), sp+".env", "%v", err)
			return Step{}, false
		}
		if size += len(kv.Value); size > MaxMatrixEnvBytes {
			v.add(fieldNode(it, "env"), sp+".env", "the values of %s are more than %d bytes once substituted", quote(e.Name), MaxMatrixEnvBytes)
			return Step{}, false
		}
		env = append(env, kv)
	}
	env = append(env, c.Env()...)
	slices.SortFunc(env, func(a, b EnvVar) int { return strings.Compare(a.Name, b.Name) })
	e.Env = env
	return e, true
}

// uniqueAfterExpansion reports an expanded name that another step of the file has
// already (a step may be named "t [a=1]" literally), at the matrix step's item.
func (v *validator) uniqueAfterExpansion(p *Pipeline, stepsNode, finallyNode *yaml.Node) {
	count := map[string]int{}
	for i := range len(p.Steps) + len(p.Finally) {
		count[p.Step(i).Name]++
	}
	for i := range len(p.Steps) + len(p.Finally) {
		s := p.Step(i)
		if s.Combination == nil || count[s.Name] < 2 {
			continue // names as written were checked by graph
		}
		node := stepsNode
		if s.Finally {
			node = finallyNode
		}
		v.add(item(node, s.Source-1), p.Path(i), "step name %s is used twice once the matrices are expanded", quote(s.Name))
		return
	}
}
