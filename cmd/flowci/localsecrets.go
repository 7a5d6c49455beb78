package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/flow-ci/flow-ci/internal/localrun"
)

// maxSecretsFile bounds a --secrets-file; a cluster bounds a Secret at 1 MiB.
const maxSecretsFile = 1 << 20

// localSecrets reads a local run's Secrets from the developer's machine, never from a
// cluster: files in the shape of a Secret's stringData under its name
//
//	deploy-token:
//	  token: s3cr3t
//
// and NAME/KEY=VARIABLE pairs that take a key's value from this process's environment.
func localSecrets(files, fromEnv []string) (localrun.Secrets, error) {
	out := localrun.Secrets{}
	for _, file := range files {
		if err := readSecretsFile(file, out); err != nil {
			return nil, err
		}
	}
	for _, pair := range fromEnv {
		ref, variable, ok := strings.Cut(pair, "=")
		name, key, ok2 := strings.Cut(ref, "/")
		if !ok || !ok2 || name == "" || key == "" || variable == "" {
			return nil, fmt.Errorf("--secret-env %q: want SECRET/KEY=VARIABLE", pair)
		}
		value, set := os.LookupEnv(variable)
		if !set {
			return nil, fmt.Errorf("--secret-env %s: the variable %s is not set", pair, variable)
		}
		if out[name] == nil {
			out[name] = map[string]string{}
		}
		out[name][key] = value
	}
	return out, nil
}

func readSecretsFile(file string, into localrun.Secrets) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretsFile+1))
	if err != nil {
		return err
	}
	if len(data) > maxSecretsFile {
		return fmt.Errorf("--secrets-file %s: larger than %d bytes", file, maxSecretsFile)
	}
	var secrets map[string]map[string]string
	if err := yaml.Unmarshal(data, &secrets); err != nil {
		// yaml's message quotes no value, only the line and the types involved.
		return fmt.Errorf("--secrets-file %s: want a mapping of Secret names to mappings of keys to strings: %w", file, err)
	}
	for name, data := range secrets {
		if into[name] == nil {
			into[name] = map[string]string{}
		}
		for k, v := range data {
			into[name][k] = v
		}
	}
	return nil
}
