package pipeline

import (
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseCaches(t *testing.T) {
	def, err := Parse([]byte(`name: c
caches:
- name: go
  preset: go
- name: web
  paths: [web/node_modules/, ~/.cache/x]
  key: {prefix: web-v2, files: [web/package-lock.json]}
  restoreKeys: [web-v2-, web-]
steps:
- name: build
  commands: [make]
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Cache{
		{Name: "go", Preset: "go", Paths: []string{"~/go/pkg/mod", "~/.cache/go-build"}, Env: Presets["go"].env,
			KeyPrefix: "go", KeyFiles: []string{"**/go.sum"}, RestoreKeys: []string{"go-"}, Line: 3},
		{Name: "web", Paths: []string{"web/node_modules", "~/.cache/x"}, KeyPrefix: "web-v2",
			KeyFiles: []string{"web/package-lock.json"}, RestoreKeys: []string{"web-v2-", "web-"}, Line: 5},
	}
	if d := cmp.Diff(want, def.Pipeline.Caches); d != "" {
		t.Errorf("caches (-want +got):\n%s", d)
	}
	saving := WithCacheSave(def.Pipeline)
	last := saving.Finally[len(saving.Finally)-1]
	if !last.SavesCaches || last.Name != SaveCachesStep || last.When.Status != StatusSuccess || len(def.Pipeline.Finally) != 0 {
		t.Errorf("WithCacheSave added %+v and changed the original's finally: %d", last, len(def.Pipeline.Finally))
	}
	if p := WithCacheSave(Pipeline{Steps: def.Pipeline.Steps}); len(p.Finally) != 0 {
		t.Error("a pipeline without caches got a saving step")
	}
}

func TestParseCachesErrors(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{"caches: [{name: Go, preset: go}]\n", `caches[0].name: must be lowercase`},
		{"caches: [{name: go, preset: cargo}]\n", `caches[0].preset: must be one of go, npm, pip, maven, gradle, got "cargo"`},
		{"caches: [{name: x}]\n", `caches[0].paths: is required without a preset`},
		{"caches: [{name: x, paths: [../up]}]\n", `must not be the workspace itself or leave it`},
		{"caches: [{name: x, paths: [/etc]}]\n", `must be a directory relative to the repository root, or under ~/`},
		{"caches: [{name: x, paths: [~/]}]\n", `must not be the workspace itself`},
		{"caches: [{name: x, paths: ['a/*']}]\n", `must be a directory relative`},
		{"caches: [{name: x, preset: go}, {name: x, preset: npm}]\n", `cache "x" is declared twice`},
		{"caches: [{name: x, preset: go, key: {prefix: 'a b'}}]\n", `caches[0].key.prefix: must be letters`},
		{"caches: [{name: x, preset: go, key: {files: [../go.sum]}}]\n", `invalid file glob`},
		{"caches: [{name: x, preset: go, restoreKeys: ['%']}]\n", `caches[0].restoreKeys[0]: must be letters`},
		{"caches: [" + strings.Repeat("{name: x, preset: go},", 9) + "]\n", `must have at most 8 caches`},
		{"steps:\n- name: 'flow-ci:save-caches'\n  commands: [x]\n", `must not start with "flow-ci:"`},
		{"caches: [{name: x, preset: go, restoreKeys: [a,b,c,d,e,f,g,h,i]}]\n", `caches[0].restoreKeys: must have at most 8 keys`},
		{"caches: [{name: x, preset: go, key: {files: ['a\\\\b']}}]\n", `invalid file glob`},
		{"caches: [{name: x, preset: go}]\nsteps:\n" + strings.Repeat("- {name: s, commands: [x]}\n", 1) + func() string {
			var b strings.Builder
			for i := range 99 {
				b.WriteString("- {name: s" + strconv.Itoa(i) + ", commands: [x]}\n")
			}
			return b.String()
		}(), `a pipeline with caches has at most 99 steps, got 100`},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			src := "name: c\n" + tc.yaml
			if !strings.Contains(tc.yaml, "steps:") {
				src += "steps:\n- name: s\n  commands: [x]\n"
			}
			_, err := Parse([]byte(src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
