package pipeline

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/flow-ci/flow-ci/internal/pathglob"
)

// graph checks what relates steps to each other, once all are converted: names unique
// across steps and finally, dependsOn resolved (the step before when absent), no
// dependency on a finally step or on itself, no cycle, and status conditions only on
// finally steps.
func (v *validator) graph(p *Pipeline, stepsNode, finallyNode *yaml.Node) {
	if n := len(p.Steps) + len(p.Finally); n > MaxSteps {
		v.add(finallyNode, "finally", "steps and finally must have at most %d steps together, got %d", MaxSteps, n)
	}
	type place struct {
		key string
		i   int
	}
	first := map[string]place{}
	isFinally := map[string]bool{}
	index := map[string]int{}
	for _, l := range []struct {
		key   string
		node  *yaml.Node
		steps []Step
	}{{"steps", stepsNode, p.Steps}, {"finally", finallyNode, p.Finally}} {
		for i, s := range l.steps {
			if s.Name == "" {
				continue
			}
			// Exact-string uniqueness; render must still make the derived object names
			// unique, since distinct names can sanitize alike.
			if at, dup := first[s.Name]; dup {
				v.add(fieldNode(item(l.node, i), "name"), fmt.Sprintf("%s[%d].name", l.key, i),
					"duplicate step name %s, already used by %s[%d]", quote(s.Name), at.key, at.i)
				continue
			}
			first[s.Name] = place{l.key, i}
			if l.key == "finally" {
				isFinally[s.Name] = true
			} else {
				index[s.Name] = i
			}
		}
	}
	for i := range p.Steps {
		sp, it := indexPath("steps", i), item(stepsNode, i)
		if p.Steps[i].When.Status != "" {
			v.add(fieldNode(fieldNode(it, "when"), "status"), sp+".when.status", "only finally steps have a status condition")
		}
		dn := fieldNode(it, "dependsOn")
		if dn == nil {
			if i > 0 && p.Steps[i-1].Name != "" {
				p.Steps[i].DependsOn = []string{p.Steps[i-1].Name}
			}
			continue
		}
		p.Steps[i].DependsOn = v.dependsOn(dn, sp+".dependsOn", p.Steps[i].Name, index, isFinally)
	}
	for i := range p.Finally {
		if dn := fieldNode(item(finallyNode, i), "dependsOn"); dn != nil {
			v.add(dn, indexPath("finally", i)+".dependsOn", "finally steps run after the graph, side by side; dependsOn is not allowed")
		}
	}
	v.cycles(p.Steps, stepsNode)
}

// dependsOn resolves one step's list of dependencies.
func (v *validator) dependsOn(n *yaml.Node, dp, self string, index map[string]int, isFinally map[string]bool) []string {
	if isNull(n) {
		return []string{}
	}
	if n.Kind != yaml.SequenceNode {
		v.add(n, dp, "must be a list of step names, got %s", describe(n))
		return nil
	}
	out := []string{}
	seen := map[string]bool{}
	for j, dn := range n.Content {
		ip := indexPath(dp, j)
		name, ok := v.text(dn, ip)
		switch {
		case !ok:
		case name == self:
			v.add(dn, ip, "a step cannot depend on itself")
		case isFinally[name]:
			v.add(dn, ip, "%s is a finally step, which runs after the graph; no step can depend on it", quote(name))
		case seen[name]:
			v.add(dn, ip, "%s is listed twice", quote(name))
		default:
			if _, ok := index[name]; !ok {
				v.add(dn, ip, "no step %s", quote(name))
				continue
			}
			seen[name] = true
			out = append(out, name)
		}
	}
	return out
}

// cycles reports the first dependency that closes a cycle, with the cycle.
func (v *validator) cycles(steps []Step, stepsNode *yaml.Node) {
	index := make(map[string]int, len(steps))
	for i, s := range steps {
		if _, dup := index[s.Name]; !dup && s.Name != "" {
			index[s.Name] = i
		}
	}
	const (
		unseen = iota
		onPath
		done
	)
	state := make([]int, len(steps))
	var stack []int
	var visit func(i int) bool
	visit = func(i int) bool {
		state[i] = onPath
		stack = append(stack, i)
		for j, dep := range steps[i].DependsOn {
			d, ok := index[dep]
			if !ok {
				continue
			}
			if state[d] == onPath {
				pos := 0
				for k, x := range stack {
					if x == d {
						pos = k
					}
				}
				var names []string
				for _, x := range stack[pos:] {
					names = append(names, quote(steps[x].Name))
				}
				msg := "a cycle: " + strings.Join(append(names, quote(steps[d].Name)), " → ")
				dn := fieldNode(item(stepsNode, i), "dependsOn")
				if dn != nil && dn.Kind == yaml.SequenceNode && j < len(dn.Content) {
					v.add(dn.Content[j], fmt.Sprintf("steps[%d].dependsOn[%d]", i, j), "%s", msg)
				} else {
					v.add(item(stepsNode, i), fmt.Sprintf("steps[%d]", i), "%s (a step without dependsOn depends on the one before it)", msg)
				}
				return true
			}
			if state[d] == unseen && visit(d) {
				return true
			}
		}
		stack = stack[:len(stack)-1]
		state[i] = done
		return false
	}
	for i := range steps {
		if state[i] == unseen && visit(i) {
			return
		}
	}
}

// when converts a step's condition.
func (v *validator) when(n *yaml.Node, wp string) When {
	f, ok := v.fields(n, wp, []string{"branch", "status", "event", "changes"})
	if !ok {
		return When{}
	}
	var w When
	if bn := f["branch"]; bn != nil {
		w.Branch = v.oneOrMany(bn, wp+".branch", func(g *yaml.Node, gp, glob string) bool {
			if _, err := path.Match(glob, ""); err != nil || glob == "" {
				v.add(g, gp, "invalid branch pattern %s", quote(glob))
				return false
			}
			return true
		})
	}
	if sn := f["status"]; sn != nil {
		s, ok := v.text(sn, wp+".status")
		if ok && s != StatusSuccess && s != StatusFailure && s != StatusAlways {
			v.add(sn, wp+".status", "must be success, failure or always, got %s", quote(s))
		}
		w.Status = s
	}
	if en := f["event"]; en != nil {
		w.Event = v.oneOrMany(en, wp+".event", func(e *yaml.Node, ep, event string) bool {
			if !slices.Contains(Events, event) {
				v.add(e, ep, "must be one of %s, got %s", strings.Join(Events, ", "), quote(event))
				return false
			}
			return true
		})
	}
	if cn := f["changes"]; cn != nil {
		w.Changes = v.oneOrMany(cn, wp+".changes", func(g *yaml.Node, gp, glob string) bool {
			if err := pathglob.ValidGlob(glob); err != nil {
				v.add(g, gp, "invalid path glob %s: %v", quote(glob), err)
				return false
			}
			return true
		})
		if len(w.Changes) > maxChangesGlobs {
			v.add(cn, wp+".changes", "must have at most %d globs, got %d", maxChangesGlobs, len(w.Changes))
		}
	}
	return w
}

// maxChangesGlobs bounds a step's when.changes, as a trigger's paths.
const maxChangesGlobs = 20

// Events are the values of when.event.
var Events = []string{"push", "pull_request", "schedule", "manual"}

// oneOrMany reads a string or a list of strings, keeping those ok accepts.
func (v *validator) oneOrMany(n *yaml.Node, np string, ok func(n *yaml.Node, path, s string) bool) []string {
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	var out []string
	for j, item := range items {
		ip := np
		if n.Kind == yaml.SequenceNode {
			ip = indexPath(np, j)
		}
		if s, isText := v.text(item, ip); isText && ok(item, ip, s) {
			out = append(out, s)
		}
	}
	return out
}

func (v *validator) boolean(n *yaml.Node, bp string) bool {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		v.add(n, bp, "must be true or false, got %s", describe(n))
		return false
	}
	var b bool
	_ = n.Decode(&b)
	return b
}

// item is the i-th element of a sequence node, or nil.
func item(list *yaml.Node, i int) *yaml.Node {
	if list == nil || list.Kind != yaml.SequenceNode || i >= len(list.Content) {
		return nil
	}
	return list.Content[i]
}

// fieldNode is the value of key in mapping n, or nil.
func fieldNode(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
