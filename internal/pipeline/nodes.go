package pipeline

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Helpers that read typed values out of YAML nodes, reporting what is wrong with them.

// name validates a pipeline or step name; ok is false if any problem was
// reported.
func (v *validator) name(parent, n *yaml.Node, np string, maxLen int) (string, bool) {
	if n == nil {
		v.add(parent, np, "is required")
		return "", false
	}
	s, ok := v.text(n, np)
	if !ok {
		return "", false
	}
	switch {
	case strings.TrimSpace(s) == "":
		v.add(n, np, "must not be empty")
	case len(s) > maxLen:
		v.add(n, np, "must be at most %d bytes, got %d", maxLen, len(s))
	case !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsControl) >= 0:
		// Names show up in status, events and logs, one line each.
		v.add(n, np, "must not contain control characters")
	default:
		return s, true
	}
	return s, false
}

func (v *validator) integer(n *yaml.Node, ip string) (int, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		v.add(n, ip, "must be an integer, got %s", describe(n))
		return 0, false
	}
	var i int
	if err := n.Decode(&i); err != nil {
		v.add(n, ip, "integer %s is out of range", quote(n.Value))
		return 0, false
	}
	return i, true
}

// text returns a scalar's literal text. Numbers, booleans and timestamps are
// accepted as written ("DEBUG: true" means "true"), so users need not quote
// them; null, custom tags and collections are refused.
func (v *validator) text(n *yaml.Node, tp string) (string, bool) {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!str", "!!int", "!!float", "!!bool", "!!timestamp":
			return n.Value, true
		}
	}
	v.add(n, tp, "must be a string, got %s", describe(n))
	return "", false
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

type keyValue struct{ key, val *yaml.Node }

// pairs returns a mapping's entries in order. It reports a node that is not
// a mapping, keys that are not scalars and repeated keys (yaml.v3 only
// catches those when decoding into Go values); only the first of repeated
// keys is kept.
func (v *validator) pairs(n *yaml.Node, mp string) ([]keyValue, bool) {
	if n.Kind != yaml.MappingNode {
		v.add(n, mp, "must be a mapping, got %s", describe(n))
		return nil, false
	}
	out := make([]keyValue, 0, len(n.Content)/2)
	firstLine := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			v.add(k, mp, "keys must be strings, got %s", describe(k))
			continue
		}
		if line, dup := firstLine[k.Value]; dup {
			v.add(k, keyPath(mp, k.Value), "duplicate key, first defined on line %d", line)
			continue
		}
		firstLine[k.Value] = k.Line
		out = append(out, keyValue{k, val})
	}
	return out, true
}

// fields returns a mapping's values by key, reporting unknown keys so that a
// typo such as "comands" fails loudly instead of being ignored.
func (v *validator) fields(n *yaml.Node, mp string, known []string) (map[string]*yaml.Node, bool) {
	pairs, ok := v.pairs(n, mp)
	if !ok {
		return nil, false
	}
	f := make(map[string]*yaml.Node, len(pairs))
	for _, kv := range pairs {
		if !slices.Contains(known, kv.key.Value) {
			v.add(kv.key, keyPath(mp, kv.key.Value), "unknown field")
			continue
		}
		f[kv.key.Value] = kv.val
	}
	return f, true
}
