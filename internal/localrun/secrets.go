package localrun

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/flow-ci/flow-ci/internal/mask"
	"github.com/flow-ci/flow-ci/internal/pipeline"
)

// Secrets are a local run's Secrets: name, then key, then value. They come from the
// developer's machine (flowci run --secrets-file, --secret-env), never from a cluster,
// and play the part of a run's spec.secrets: a step that asks for one that is not
// here fails (SecretNotExposed), as on a cluster.
type Secrets map[string]map[string]string

// Names are the Secrets' names, sorted.
func (s Secrets) Names() []string {
	out := make([]string, 0, len(s))
	for name := range s {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// Masker masks every value of every Secret, as a cluster masks what a run exposes.
func (s Secrets) Masker() (*mask.Masker, error) {
	var values []string
	for _, name := range s.Names() {
		for _, v := range s[name] {
			values = append(values, v)
		}
	}
	return mask.New(values)
}

// stepEnv is what step adds to its environment from its Secrets, "NAME=value". A key
// the Secret lacks is an error, as the kubelet refuses to start such a container.
func (s Secrets) stepEnv(step *pipeline.Step) ([]string, error) {
	var out []string
	for _, use := range step.Secrets {
		data, ok := s[use.Name]
		if !ok {
			continue // the graph fails the step first (SecretNotExposed)
		}
		for _, e := range use.Env {
			v, ok := data[e.Key]
			if !ok {
				return nil, fmt.Errorf("Secret %q has no key %q (for variable %s)", use.Name, e.Key, e.Name)
			}
			out = append(out, e.Name+"="+v)
		}
		for _, key := range use.Files {
			if _, ok := data[key]; !ok {
				return nil, fmt.Errorf("Secret %q has no key %q (for a file)", use.Name, key)
			}
		}
	}
	return out, nil
}

// writeFiles writes the keys that some step of p asks for as files under dir, as a
// cluster mounts them under pipeline.SecretsDir: dir/<secret>/<key>, readable by the
// developer only.
func (s Secrets) writeFiles(dir string, p *pipeline.Pipeline) error {
	for i := range len(p.Steps) + len(p.Finally) {
		for _, use := range p.Step(i).Secrets {
			data, ok := s[use.Name]
			if !ok {
				continue
			}
			for _, key := range use.Files {
				v, ok := data[key]
				if !ok {
					continue // stepEnv fails the step
				}
				if err := os.MkdirAll(filepath.Join(dir, use.Name), 0o700); err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(dir, use.Name, key), []byte(v), 0o600); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// prepareSecrets builds o's masker and writes the Secrets' files into o.SecretsDir (a
// private temporary directory unless set); cleanup removes what it made.
func prepareSecrets(o *Options, p *pipeline.Pipeline) (cleanup func(), err error) {
	cleanup = func() {}
	if len(o.Secrets) == 0 {
		return cleanup, nil
	}
	if o.masker, err = o.Secrets.Masker(); err != nil {
		return cleanup, err
	}
	if o.SecretsDir == "" {
		dir, err := os.MkdirTemp("", "flowci-secrets-")
		if err != nil {
			return cleanup, err
		}
		o.SecretsDir, cleanup = dir, func() { _ = os.RemoveAll(dir) }
	}
	if err := o.Secrets.writeFiles(o.SecretsDir, p); err != nil {
		cleanup()
		return func() {}, err
	}
	return cleanup, nil
}

// masked passes w through the Secrets' mask; Close flushes what it holds back.
func (o *Options) masked(w io.Writer) io.WriteCloser {
	if o.masker.Empty() {
		return nopCloser{w}
	}
	return o.masker.Writer(w)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
