package pipeline

import (
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Limits on a step's use of Secrets.
const (
	// MaxStepSecrets bounds the Secrets one step asks for: a run exposes at most 10
	// (each costs the admission policy an authorizer check).
	MaxStepSecrets = 10
	// maxSecretItems bounds the variables and files one Secret gives a step.
	maxSecretItems = 50
)

// SecretsDir is where a step finds the files of the Secrets it asks for, one directory
// per Secret: SecretsDir/<secret>/<key>. Steps see it as $FLOWCI_SECRETS.
const SecretsDir = "/var/run/flowci/secrets"

// SecretUse is one Secret a step asks for by name: some of its keys as environment
// variables, some as files under SecretsDir/<name>/.
type SecretUse struct {
	// Name is the Secret's name; the run must expose it (spec.secrets).
	Name string
	// Env maps variables to the Secret's keys, sorted by variable name.
	Env []SecretEnv
	// Files are keys of the Secret mounted as files, sorted.
	Files []string
	// Line is where the file asks for the Secret.
	Line int
}

// SecretEnv is a variable set from a Secret's key.
type SecretEnv struct {
	Name, Key string
}

var (
	// dnsSubdomain is a Kubernetes object name, as a Secret's.
	dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	// secretKey is a key of a Secret's data, as the API server allows it.
	secretKey = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
)

// secrets converts a step's secrets list:
//
//	secrets:
//	- name: deploy-token
//	  env: {DEPLOY_TOKEN: token}
//	  files: [ca.crt]
func (v *validator) secrets(n *yaml.Node, sp string) []SecretUse {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		v.add(n, sp, "must be a list, got %s", describe(n))
		return nil
	}
	if len(n.Content) > MaxStepSecrets {
		v.add(n, sp, "must have at most %d Secrets, got %d", MaxStepSecrets, len(n.Content))
		return nil
	}
	var out []SecretUse
	for i, item := range n.Content {
		ip := indexPath(sp, i)
		f, ok := v.fields(item, ip, []string{"name", "env", "files"})
		if !ok {
			continue
		}
		use := SecretUse{Line: item.Line}
		if name, ok := v.name(item, f["name"], ip+".name", 253); ok {
			if !dnsSubdomain.MatchString(name) {
				v.add(f["name"], ip+".name", "must be a Secret's name (a DNS subdomain), got %s", quote(name))
			}
			if slices.ContainsFunc(out, func(u SecretUse) bool { return u.Name == name }) {
				v.add(f["name"], ip+".name", "Secret %s is listed twice", quote(name))
			}
			use.Name = name
		}
		if en := f["env"]; en != nil {
			use.Env = v.secretEnv(en, ip+".env")
		}
		if fn := f["files"]; fn != nil {
			use.Files = v.secretFiles(fn, ip+".files")
		}
		if len(use.Env) == 0 && len(use.Files) == 0 {
			v.add(item, ip, "must set env or files: a Secret the step does not read is not needed")
		}
		out = append(out, use)
	}
	return out
}

func (v *validator) secretEnv(n *yaml.Node, ep string) []SecretEnv {
	pairs, ok := v.pairs(n, ep)
	if !ok {
		return nil
	}
	if len(pairs) > maxSecretItems {
		v.add(n, ep, "must have at most %d variables, got %d", maxSecretItems, len(pairs))
		return nil
	}
	var out []SecretEnv
	for _, kv := range pairs {
		kp := keyPath(ep, kv.key.Value)
		switch name := kv.key.Value; {
		case !isEnvName(name):
			v.add(kv.key, kp, "invalid name, must match [A-Za-z_][A-Za-z0-9_]*")
		case strings.HasPrefix(name, ReservedEnvPrefix):
			v.add(kv.key, kp, "the %s prefix is reserved for the operator", ReservedEnvPrefix)
		}
		if key, ok := v.text(kv.val, kp); ok {
			v.checkKey(kv.val, kp, key)
			out = append(out, SecretEnv{Name: kv.key.Value, Key: key})
		}
	}
	slices.SortFunc(out, func(a, b SecretEnv) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (v *validator) secretFiles(n *yaml.Node, fp string) []string {
	if n.Kind != yaml.SequenceNode {
		v.add(n, fp, "must be a list of the Secret's keys, got %s", describe(n))
		return nil
	}
	if len(n.Content) > maxSecretItems {
		v.add(n, fp, "must have at most %d keys, got %d", maxSecretItems, len(n.Content))
		return nil
	}
	var out []string
	for i, kn := range n.Content {
		kp := indexPath(fp, i)
		if key, ok := v.text(kn, kp); ok {
			v.checkKey(kn, kp, key)
			if slices.Contains(out, key) {
				v.add(kn, kp, "key %s is listed twice", quote(key))
			}
			out = append(out, key)
		}
	}
	slices.Sort(out)
	return out
}

// checkKey refuses what cannot be a key of a Secret's data; "." and a leading ".."
// (which the API server refuses too) would also make a file name that leaves the
// Secret's directory.
func (v *validator) checkKey(n *yaml.Node, kp, key string) {
	if len(key) > 253 || !secretKey.MatchString(key) || key == "." || strings.HasPrefix(key, "..") {
		v.add(n, kp, "must be a key of the Secret (letters, digits, '-', '_' and '.', at most 253), got %s", quote(key))
	}
}

// checkSecretEnv refuses a variable that a step sets both from a Secret and from its
// or the pipeline's env, since one of the two would silently win.
func (v *validator) checkSecretEnv(sp string, s Step, pipelineEnv []EnvVar) {
	seen := map[string]bool{}
	for _, e := range append(append([]EnvVar(nil), pipelineEnv...), s.Env...) {
		seen[e.Name] = true
	}
	for _, u := range s.Secrets {
		for _, e := range u.Env {
			if seen[e.Name] {
				v.add(&yaml.Node{Line: u.Line}, sp+".secrets", "variable %s is set twice (by env and by Secret %s, or by two Secrets)", quote(e.Name), quote(u.Name))
			}
			seen[e.Name] = true
		}
	}
}
