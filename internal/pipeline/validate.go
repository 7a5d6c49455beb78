package pipeline

import (
	"path"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

const (
	maxPipelineNameLen = 253
	// maxStepNameLen matches a DNS label, which is what render derives from it.
	maxStepNameLen = 63
	maxCommandLen  = 64 << 10
	maxTimeout     = 24 * time.Hour
)

var (
	pipelineFields = []string{"version", "name", "image", "env", "steps"}
	stepFields     = []string{"name", "image", "env", "commands", "timeout", "workingDir", "retries"}
)

// pipeline converts the top-level mapping. The tree has passed checkShape:
// it holds no aliases and is shallow.
func (v *validator) pipeline(top *yaml.Node) Pipeline {
	f, _ := v.fields(top, "", pipelineFields)
	p := Pipeline{Version: 1}
	if n := f["version"]; n != nil {
		if ver, ok := v.integer(n, "version"); ok && ver != 1 {
			v.add(n, "version", "unsupported version %d, only 1 is supported", ver)
		}
	}
	p.Name, _ = v.name(top, f["name"], "name", maxPipelineNameLen)
	if n := f["image"]; n != nil {
		p.Image = v.image(n, "image")
	}
	if n := f["env"]; n != nil {
		p.Env = v.env(n, "env")
	}
	p.Steps = v.steps(top, f["steps"])
	return p
}

func (v *validator) steps(parent, n *yaml.Node) []Step {
	switch {
	case n == nil:
		v.add(parent, "steps", "is required")
		return nil
	case isNull(n):
		v.add(n, "steps", "must have at least one step")
		return nil
	case n.Kind != yaml.SequenceNode:
		v.add(n, "steps", "must be a list, got %s", describe(n))
		return nil
	}
	items := n.Content
	switch {
	case len(items) == 0:
		v.add(n, "steps", "must have at least one step")
	case len(items) > MaxSteps:
		v.add(n, "steps", "must have at most %d steps, got %d", MaxSteps, len(items))
		items = items[:MaxSteps]
	}
	steps := make([]Step, 0, len(items))
	firstUse := make(map[string]int, len(items))
	for i, sn := range items {
		sp := indexPath("steps", i)
		s, nameNode := v.step(sn, sp)
		if nameNode != nil {
			// Exact-string uniqueness; render must still make the derived
			// object names unique, since distinct names can sanitize alike.
			if j, dup := firstUse[s.Name]; dup {
				v.add(nameNode, sp+".name", "duplicate step name %s, already used by steps[%d]", quote(s.Name), j)
			} else {
				firstUse[s.Name] = i
			}
		}
		steps = append(steps, s)
	}
	return steps
}

// step converts one step. It returns the name's node only when the name is
// valid, so that a bad name is not reported again as a duplicate.
func (v *validator) step(n *yaml.Node, sp string) (Step, *yaml.Node) {
	f, ok := v.fields(n, sp, stepFields)
	if !ok {
		return Step{}, nil
	}
	var s Step
	var nameNode *yaml.Node
	if name, ok := v.name(n, f["name"], sp+".name", maxStepNameLen); ok {
		s.Name, nameNode = name, f["name"]
	}
	if in := f["image"]; in != nil {
		s.Image = v.image(in, sp+".image")
	}
	if en := f["env"]; en != nil {
		s.Env = v.env(en, sp+".env")
	}
	s.Commands = v.commands(n, f["commands"], sp+".commands")
	if tn := f["timeout"]; tn != nil {
		s.Timeout = v.timeout(tn, sp+".timeout")
	}
	if wn := f["workingDir"]; wn != nil {
		s.WorkingDir = v.workingDir(wn, sp+".workingDir")
	}
	if rn := f["retries"]; rn != nil {
		if r, ok := v.integer(rn, sp+".retries"); ok {
			if r < 0 || r > MaxRetries {
				v.add(rn, sp+".retries", "must be between 0 and %d, got %d", MaxRetries, r)
			}
			s.Retries = r
		}
	}
	return s, nameNode
}

func (v *validator) commands(parent, n *yaml.Node, cp string) []string {
	switch {
	case n == nil:
		v.add(parent, cp, "is required")
		return nil
	case isNull(n):
		v.add(n, cp, "must not be empty")
		return nil
	case n.Kind != yaml.SequenceNode:
		v.add(n, cp, "must be a list, got %s", describe(n))
		return nil
	}
	items := n.Content
	switch {
	case len(items) == 0:
		v.add(n, cp, "must not be empty")
	case len(items) > MaxCommandsPerStep:
		v.add(n, cp, "must have at most %d commands, got %d", MaxCommandsPerStep, len(items))
		items = items[:MaxCommandsPerStep]
	}
	cmds := make([]string, 0, len(items))
	for i, c := range items {
		ip := indexPath(cp, i)
		s, ok := v.text(c, ip)
		if !ok {
			continue
		}
		switch {
		case strings.TrimSpace(s) == "":
			v.add(c, ip, "must not be empty")
		case len(s) > maxCommandLen:
			v.add(c, ip, "must be at most %d bytes, got %d", maxCommandLen, len(s))
		case strings.IndexByte(s, 0) >= 0:
			// Commands end up in argv, which cannot carry NUL.
			v.add(c, ip, "must not contain NUL characters")
		}
		cmds = append(cmds, s)
	}
	return cmds
}

// env converts an env mapping, sorted by name. A null value (every entry
// commented out) means no variables.
func (v *validator) env(n *yaml.Node, ep string) []EnvVar {
	if isNull(n) {
		return nil
	}
	pairs, ok := v.pairs(n, ep)
	if !ok {
		return nil
	}
	var env []EnvVar
	for _, kv := range pairs {
		kp := keyPath(ep, kv.key.Value)
		switch name := kv.key.Value; {
		case !isEnvName(name):
			v.add(kv.key, kp, "invalid name, must match [A-Za-z_][A-Za-z0-9_]*")
		case strings.HasPrefix(name, ReservedEnvPrefix):
			v.add(kv.key, kp, "the %s prefix is reserved for the operator", ReservedEnvPrefix)
		}
		val, ok := v.text(kv.val, kp)
		if ok && strings.IndexByte(val, 0) >= 0 {
			v.add(kv.val, kp, "must not contain NUL characters")
		}
		env = append(env, EnvVar{Name: kv.key.Value, Value: val})
	}
	sort.Slice(env, func(i, j int) bool { return env[i].Name < env[j].Name })
	return env
}

func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

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

func (v *validator) image(n *yaml.Node, ip string) string {
	s, ok := v.text(n, ip)
	if !ok {
		return ""
	}
	if s == "" {
		v.add(n, ip, "must not be empty")
		return ""
	}
	if why := checkImageRef(s); why != "" {
		v.add(n, ip, "invalid image reference %s: %s", quote(s), why)
	}
	return s
}

func (v *validator) timeout(n *yaml.Node, tp string) time.Duration {
	s, ok := v.text(n, tp)
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		v.add(n, tp, `must be a duration such as "10m" or "1h30m", got %s`, quote(s))
	case d <= 0:
		v.add(n, tp, "must be greater than 0")
	case d > maxTimeout:
		v.add(n, tp, "must be at most 24h")
	}
	return d
}

// workingDir returns the cleaned directory, "" for the repository root. The
// check is lexical: a symlink in the checkout can still point elsewhere, which
// is harmless because a step can cd anywhere in its own container anyway.
func (v *validator) workingDir(n *yaml.Node, wp string) string {
	s, ok := v.text(n, wp)
	if !ok {
		return ""
	}
	switch {
	case s == "":
		v.add(n, wp, "must not be empty; omit it to use the repository root")
		return ""
	case strings.IndexByte(s, 0) >= 0:
		v.add(n, wp, "must not contain NUL characters")
		return ""
	case path.IsAbs(s):
		v.add(n, wp, "must be relative to the repository root")
		return ""
	}
	c := path.Clean(s)
	if c == ".." || strings.HasPrefix(c, "../") {
		v.add(n, wp, "must not escape the repository root")
		return ""
	}
	if c == "." {
		return ""
	}
	return c
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
