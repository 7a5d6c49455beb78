package pipeline

import (
	"path"
	"sort"
	"strings"
	"time"

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
	pipelineFields = []string{"version", "name", "image", "env", "steps", "finally", "failFast", "resources", "caches"}
	stepFields     = []string{"name", "image", "env", "commands", "timeout", "workingDir", "retries", "dependsOn", "when", "allowFailure", "resources", "secrets", "artifacts", "matrix", "services"}
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
	if n := f["failFast"]; n != nil {
		p.FailFast = v.boolean(n, "failFast")
	}
	if n := f["resources"]; n != nil {
		p.Resources = v.resources(n, "resources")
	}
	if n := f["caches"]; n != nil {
		p.Caches = v.caches(n, "caches")
	}
	p.Steps = v.steps(top, f["steps"], "steps", true)
	if n := f["finally"]; n != nil && !isNull(n) {
		p.Finally = v.steps(top, n, "finally", false)
	}
	v.graph(&p, f["steps"], f["finally"])
	p.Steps = v.expandMatrices(p.Steps, f["steps"], "steps")
	p.Finally = v.expandMatrices(p.Finally, f["finally"], "finally")
	if n := len(p.Steps) + len(p.Finally); n > MaxSteps {
		at := f["steps"]
		if at == nil {
			at = top
		}
		v.add(at, "steps", "steps and finally must have at most %d steps together once their matrices are expanded, got %d", MaxSteps, n)
	}
	v.uniqueAfterExpansion(&p, f["steps"], f["finally"])
	if n := len(p.Steps) + len(p.Finally); len(p.Caches) > 0 && n >= MaxSteps {
		v.add(f["caches"], "caches", "a pipeline with caches has at most %d steps, got %d: runs that save them get one more", MaxSteps-1, n)
	}
	for i := range len(p.Steps) + len(p.Finally) {
		if s := p.Step(i); s.Source == 0 || i == 0 || p.Step(i-1).Source != s.Source || p.Step(i-1).Finally != s.Finally {
			v.checkSecretEnv(p.Path(i), *s, p.Env) // once per item of the file
		}
	}
	return p
}

// steps converts the list under key ("steps" or "finally"); required says it must have
// at least one.
func (v *validator) steps(parent, n *yaml.Node, key string, required bool) []Step {
	switch {
	case n == nil:
		v.add(parent, key, "is required")
		return nil
	case isNull(n):
		v.add(n, key, "must have at least one step")
		return nil
	case n.Kind != yaml.SequenceNode:
		v.add(n, key, "must be a list, got %s", describe(n))
		return nil
	}
	items := n.Content
	switch {
	case len(items) == 0 && required:
		v.add(n, key, "must have at least one step")
	case len(items) > MaxSteps:
		v.add(n, key, "must have at most %d steps, got %d", MaxSteps, len(items))
		items = items[:MaxSteps]
	}
	steps := make([]Step, 0, len(items))
	for i, sn := range items {
		s := v.step(sn, indexPath(key, i))
		s.Finally = key == "finally"
		steps = append(steps, s)
	}
	return steps
}

// step converts one step; the graph's fields are checked by graph, once every step's
// name is known.
func (v *validator) step(n *yaml.Node, sp string) Step {
	f, ok := v.fields(n, sp, stepFields)
	if !ok {
		return Step{}
	}
	var s Step
	if name, ok := v.name(n, f["name"], sp+".name", maxStepNameLen); ok {
		if strings.HasPrefix(name, ReservedStepPrefix) {
			v.add(f["name"], sp+".name", "must not start with %s: the operator's own steps do", quote(ReservedStepPrefix))
		}
		s.Name = name
	}
	if wn := f["when"]; wn != nil {
		s.When = v.when(wn, sp+".when")
	}
	if an := f["allowFailure"]; an != nil {
		s.AllowFailure = v.boolean(an, sp+".allowFailure")
	}
	if rn := f["resources"]; rn != nil {
		s.Resources = v.resources(rn, sp+".resources")
	}
	if in := f["image"]; in != nil {
		if f["matrix"] != nil && matrixRef.MatchString(in.Value) {
			s.Image, _ = v.text(in, sp+".image") // checked once each combination's is known
		} else {
			s.Image = v.image(in, sp+".image")
		}
	}
	if en := f["env"]; en != nil {
		s.Env = v.env(en, sp+".env")
	}
	if mn := f["matrix"]; mn != nil {
		s.Matrix = v.matrix(mn, sp+".matrix")
	}
	if sn := f["secrets"]; sn != nil {
		s.Secrets = v.secrets(sn, sp+".secrets")
	}
	if an := f["artifacts"]; an != nil {
		s.Artifacts = v.artifacts(an, sp+".artifacts")
	}
	if sn := f["services"]; sn != nil {
		s.Services = v.services(sn, sp+".services")
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
	return s
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
