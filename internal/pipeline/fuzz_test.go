package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// envNameRE restates the env name rule independently of isEnvName.
var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// FuzzParse checks that Parse never panics, that every accepted file meets
// the invariants other packages rely on, and that every rejection is a
// well-formed *Error. More seeds live in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte(seedFile))
	f.Add([]byte(matrixFile))
	f.Add([]byte("name: m\nfinally:\n- {name: a, matrix: {a: [1, 2, 3, 4, 5, 6, 7, 8], b: [1, 2, 3, 4, 5, 6, 7, 8]}, commands: [x]}\n" +
		"- {name: b, matrix: {a: [1, 2, 3, 4, 5, 6, 7, 8], b: [1, 2, 3, 4, 5, 6, 7, 8]}, commands: [x]}\n"))
	f.Add([]byte(billionLaughs))
	f.Add([]byte("version: 1\nname: p\nimage: golang:1.26\nenv: {A: 1}\nsteps:\n- name: a\n  image: alpine@sha256:" + digest64 +
		"\n  env: {B: true}\n  commands: [x]\n  timeout: 10m\n  workingDir: a/../b\n  retries: 2\n"))
	f.Add([]byte("name: p\nsteps:\n- {name: a, commands: [x], workingDir: ../x}\n"))
	f.Add([]byte("name: p\nsteps: [{name: a, commands: [x]}]\n---\nname: q\n"))
	f.Add([]byte(issueExample))
	f.Add([]byte("name: p\nsteps:\n- {name: a, commands: [x], dependsOn: [c]}\n- {name: b, commands: [x]}\n- {name: c, commands: [x], dependsOn: [b]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		def, err := Parse(data)
		if err != nil {
			checkError(t, def, err)
			return
		}
		checkDefinition(t, data, def)
		// Parsing is deterministic: render relies on the same file always
		// giving the same objects.
		again, err := Parse(data)
		if err != nil {
			t.Fatalf("second Parse failed: %v", err)
		}
		if diff := cmp.Diff(def, again); diff != "" {
			t.Fatalf("Parse is not deterministic (-first +second):\n%s", diff)
		}
	})
}

func checkError(t *testing.T, def *Definition, err error) {
	t.Helper()
	if def != nil {
		t.Fatalf("Parse returned both a definition and an error: %v", err)
	}
	var perr *Error
	if !errors.As(err, &perr) {
		t.Fatalf("error is %T, want *Error: %v", err, err)
	}
	if len(perr.Problems) == 0 || len(perr.Problems) > maxProblems+1 {
		t.Fatalf("error has %d problems: %v", len(perr.Problems), err)
	}
	for _, p := range perr.Problems {
		if p.Msg == "" || p.Line < 0 {
			t.Fatalf("malformed problem %+v", p)
		}
	}
	if err.Error() == "" {
		t.Fatal("empty error message")
	}
}

func checkDefinition(t *testing.T, data []byte, def *Definition) {
	t.Helper()
	sum := sha256.Sum256(data)
	if want := "sha256:" + hex.EncodeToString(sum[:]); def.Digest != want {
		t.Fatalf("Digest = %q, want %q", def.Digest, want)
	}
	if len(data) > MaxFileSize {
		t.Fatalf("accepted a file of %d bytes", len(data))
	}
	p := def.Pipeline
	if p.Version != 1 {
		t.Fatalf("Version = %d", p.Version)
	}
	if strings.TrimSpace(p.Name) == "" || len(p.Name) > 253 {
		t.Fatalf("bad pipeline name %q", p.Name)
	}
	checkImage(t, p.Image)
	checkEnv(t, p.Env)
	if len(p.Steps) < 1 || len(p.Steps)+len(p.Finally) > MaxSteps {
		t.Fatalf("%d steps, %d finally", len(p.Steps), len(p.Finally))
	}
	checkGraph(t, p)
	names := make(map[string]bool)
	for i, s := range p.Steps {
		if strings.TrimSpace(s.Name) == "" || len(s.Name) > 63 || names[s.Name] {
			t.Fatalf("steps[%d]: empty, long or duplicate name %q", i, s.Name)
		}
		names[s.Name] = true
		if len(s.Commands) < 1 || len(s.Commands) > MaxCommandsPerStep {
			t.Fatalf("steps[%d]: %d commands", i, len(s.Commands))
		}
		for j, c := range s.Commands {
			if strings.TrimSpace(c) == "" || strings.ContainsRune(c, 0) {
				t.Fatalf("steps[%d].commands[%d]: blank or NUL command %q", i, j, c)
			}
		}
		checkImage(t, s.Image)
		checkEnv(t, s.Env)
		if s.Timeout < 0 || s.Timeout > 24*time.Hour {
			t.Fatalf("steps[%d]: timeout %v", i, s.Timeout)
		}
		if w := s.WorkingDir; w != "" {
			if path.IsAbs(w) || path.Clean(w) != w || w == "." || w == ".." || strings.HasPrefix(w, "../") || strings.ContainsRune(w, 0) {
				t.Fatalf("steps[%d]: workingDir %q escapes or is not clean", i, w)
			}
		}
		if s.Retries < 0 || s.Retries > MaxRetries {
			t.Fatalf("steps[%d]: retries %d", i, s.Retries)
		}
	}
}

func checkEnv(t *testing.T, env []EnvVar) {
	t.Helper()
	for i, e := range env {
		if !envNameRE.MatchString(e.Name) || strings.HasPrefix(e.Name, "FLOWCI_") {
			t.Fatalf("bad env name %q", e.Name)
		}
		if i > 0 && env[i-1].Name >= e.Name {
			t.Fatalf("env not sorted or not unique: %q then %q", env[i-1].Name, e.Name)
		}
		if strings.ContainsRune(e.Value, 0) {
			t.Fatalf("env %s contains NUL", e.Name)
		}
	}
}

// checkImage applies coarse checks that hold for any valid reference.
func checkImage(t *testing.T, img string) {
	t.Helper()
	if len(img) > 255 || strings.ContainsAny(img, " \t\r\n\x00") || strings.HasPrefix(img, "/") {
		t.Fatalf("bad image %q", img)
	}
}

// checkGraph: names unique across steps and finally, every dependency a graph step,
// none on itself, no cycle, finally steps without dependencies.
func checkGraph(t *testing.T, p Pipeline) {
	t.Helper()
	seen := map[string]bool{}
	index := map[string]int{}
	for i, s := range p.All() {
		if seen[s.Name] {
			t.Fatalf("duplicate name %q", s.Name)
		}
		seen[s.Name] = true
		if !s.Finally {
			index[s.Name] = i
		} else if len(s.DependsOn) > 0 {
			t.Fatalf("finally step %q has dependencies", s.Name)
		}
	}
	for _, s := range p.Steps {
		for _, d := range s.DependsOn {
			if _, ok := index[d]; !ok || d == s.Name {
				t.Fatalf("step %q depends on %q", s.Name, d)
			}
		}
	}
	// Kahn's algorithm consumes every step of an acyclic graph.
	in := map[string]int{}
	for _, s := range p.Steps {
		in[s.Name] = len(s.DependsOn)
	}
	done := 0
	for progress := true; progress; {
		progress = false
		for _, s := range p.Steps {
			if in[s.Name] == 0 {
				in[s.Name] = -1
				done++
				progress = true
				for _, o := range p.Steps {
					for _, d := range o.DependsOn {
						if d == s.Name {
							in[o.Name]--
						}
					}
				}
			}
		}
	}
	if done != len(p.Steps) {
		t.Fatalf("accepted a cyclic graph: %+v", p.Steps)
	}
}
