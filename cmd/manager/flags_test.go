package main

import (
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestStepFlags: the graph and resource flags parse, and defaults above the maximum
// are refused at startup instead of failing every run.
func TestStepFlags(t *testing.T) {
	base := []string{"--clone-image=flow-ci:test"}
	cases := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, o *options)
	}{
		{name: "defaults", check: func(t *testing.T, o *options) {
			if o.lifecycle.MaxParallelSteps != 4 || o.lifecycle.FinallyGrace != 5*time.Minute {
				t.Errorf("max-parallel-steps %d, finally-grace %v", o.lifecycle.MaxParallelSteps, o.lifecycle.FinallyGrace)
			}
			if got := o.render.MaxStepResources.Memory().String(); got != "32Gi" {
				t.Errorf("max-step-resources memory %s", got)
			}
		}},
		{name: "set", args: []string{"--max-parallel-steps=2", "--finally-grace=30s", "--max-step-resources=cpu=2,memory=4Gi"},
			check: func(t *testing.T, o *options) {
				if o.lifecycle.MaxParallelSteps != 2 || o.lifecycle.FinallyGrace != 30*time.Second || o.render.MaxStepResources.Cpu().String() != "2" {
					t.Errorf("got %d, %v, %v", o.lifecycle.MaxParallelSteps, o.lifecycle.FinallyGrace, o.render.MaxStepResources)
				}
			}},
		{name: "default limit over the maximum", args: []string{"--max-step-resources=memory=1Gi"},
			wantErr: "--default-step-limits: memory=2Gi is above --max-step-resources memory=1Gi"},
		{name: "default request over the maximum", args: []string{"--default-step-requests=cpu=3", "--max-step-resources=cpu=2"},
			wantErr: "--default-step-requests: cpu=3 is above --max-step-resources cpu=2"},
		{name: "bad quantity", args: []string{"--max-step-resources=cpu=lots"}, wantErr: "max-step-resources"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, _, err := parseFlags(append(append([]string{}, base...), tc.args...))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, o)
		})
	}
}

// TestFlagsAreDocumented: docs/operating.md's flags table names exactly the manager's
// own flags (zap's logging flags are controller-runtime's and documented there).
func TestFlagsAreDocumented(t *testing.T) {
	documented := documentedFlags(t, "../../docs/operating.md")
	fs := newFlagSet(&options{}, &rawFlags{})
	fs.VisitAll(func(f *flag.Flag) {
		if !documented[f.Name] {
			t.Errorf("--%s is not in docs/operating.md's flags table", f.Name)
		}
		delete(documented, f.Name)
	})
	for name := range documented {
		t.Errorf("docs/operating.md documents --%s, which the manager does not have", name)
	}
}

// documentedFlags are the flags named in the first column of a doc's tables.
func documentedFlags(t *testing.T, path string) map[string]bool {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "| `--") {
			continue
		}
		cell := strings.Split(line, "|")[1]
		for _, m := range regexp.MustCompile("`--([a-z0-9-]+)`").FindAllStringSubmatch(cell, -1) {
			documented[m[1]] = true
		}
	}
	return documented
}
