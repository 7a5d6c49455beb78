package pipeline

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// issueExample is the graph format as documented.
const issueExample = `name: example
failFast: false
steps:
- name: lint
  dependsOn: []
  commands: [make lint]
- name: test
  dependsOn: []
  resources: {cpu: "1", memory: 1Gi, limits: {memory: 2Gi}}
  commands: [make test]
- name: build
  dependsOn: [lint, test]
  when: {branch: [main, "release/*"]}
  commands: [make build]
- name: e2e
  allowFailure: true
  commands: [make e2e]
finally:
- name: notify
  when: {status: failure}
  commands: [./notify.sh]
resources: {cpu: 250m, memory: 256Mi}
`

func q(s string) resource.Quantity { return resource.MustParse(s) }

func TestParseGraph(t *testing.T) {
	def, err := Parse([]byte(issueExample))
	if err != nil {
		t.Fatal(err)
	}
	p := def.Pipeline
	got := map[string][]string{}
	for _, s := range p.All() {
		got[s.Name] = s.DependsOn
	}
	want := map[string][]string{"lint": {}, "test": {}, "build": {"lint", "test"}, "e2e": {"build"}, "notify": nil}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dependsOn (-want +got):\n%s", diff)
	}
	if !p.Steps[3].AllowFailure || !p.Finally[0].Finally || p.Finally[0].When.Status != StatusFailure {
		t.Errorf("flags: %+v %+v", p.Steps[3], p.Finally[0])
	}
	if diff := cmp.Diff([]string{"main", "release/*"}, p.Steps[2].When.Branch); diff != "" {
		t.Errorf("when.branch: %s", diff)
	}
	cmpQ := cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })
	wantTest := Resources{Requests: corev1.ResourceList{corev1.ResourceCPU: q("1"), corev1.ResourceMemory: q("1Gi")}, Limits: corev1.ResourceList{corev1.ResourceMemory: q("2Gi")}, Line: 9}
	if diff := cmp.Diff(wantTest, p.Steps[1].Resources, cmpQ); diff != "" {
		t.Errorf("step resources: %s", diff)
	}
	if diff := cmp.Diff(Resources{Requests: corev1.ResourceList{corev1.ResourceCPU: q("250m"), corev1.ResourceMemory: q("256Mi")}, Line: 22}, p.Resources, cmpQ); diff != "" {
		t.Errorf("pipeline resources: %s", diff)
	}
	if p.FailFast {
		t.Error("failFast")
	}
}

func TestParseGraphErrors(t *testing.T) {
	step := func(name, extra string) string {
		return "- name: " + name + "\n  commands: [x]\n" + extra
	}
	cases := []struct {
		name, in, want string
	}{
		{"unknown dependency", "steps:\n" + step("test", "") + step("build", "  dependsOn: [tset]\n"),
			`steps[1].dependsOn[0]: no step "tset" (line 7)`},
		{"self dependency", "steps:\n" + step("a", "  dependsOn: [a]\n"), `steps[0].dependsOn[0]: a step cannot depend on itself (line 5)`},
		{"cycle", "steps:\n" + step("a", "  dependsOn: [c]\n") + step("b", "  dependsOn: [a]\n") + step("c", "  dependsOn: [b]\n"),
			`steps[1].dependsOn[0]: a cycle: "a" → "c" → "b" → "a" (line 8)`},
		{"cycle through an implicit dependency", "steps:\n" + step("a", "  dependsOn: [b]\n") + step("b", ""),
			`steps[1]: a cycle: "a" → "b" → "a" (a step without dependsOn depends on the one before it) (line 6)`},
		{"depending on a finally step", "steps:\n" + step("a", "  dependsOn: [n]\n") + "finally:\n" + step("n", ""),
			`steps[0].dependsOn[0]: "n" is a finally step, which runs after the graph; no step can depend on it (line 5)`},
		{"names unique across steps and finally", "steps:\n" + step("a", "") + "finally:\n" + step("a", ""),
			`finally[0].name: duplicate step name "a", already used by steps[0] (line 6)`},
		{"duplicate step names", "steps:\n" + step("a", "") + step("a", ""), `steps[1].name: duplicate step name "a", already used by steps[0] (line 5)`},
		{"dependsOn in finally", "steps:\n" + step("a", "") + "finally:\n" + step("n", "  dependsOn: [a]\n"),
			`finally[0].dependsOn: finally steps run after the graph, side by side; dependsOn is not allowed (line 8)`},
		{"status outside finally", "steps:\n" + step("a", "  when: {status: failure}\n"), `steps[0].when.status: only finally steps have a status condition (line 5)`},
		{"bad status", "steps:\n" + step("a", "") + "finally:\n" + step("n", "  when: {status: sometimes}\n"),
			`finally[0].when.status: must be success, failure or always, got "sometimes" (line 8)`},
		{"bad branch glob", "steps:\n" + step("a", "  when: {branch: [\"[\"]}\n"), `steps[0].when.branch[0]: invalid branch pattern "[" (line 5)`},
		{"listed twice", "steps:\n" + step("a", "") + step("b", "  dependsOn: [a, a]\n"), `steps[1].dependsOn[1]: "a" is listed twice (line 7)`},
		{"request above limit", "steps:\n" + step("a", "  resources: {memory: 2Gi, limits: {memory: 1Gi}}\n"),
			`steps[0].resources.memory: request 2Gi is above its limit 1Gi (line 5)`},
		{"bad quantity", "resources: {cpu: lots}\nsteps:\n" + step("a", ""), `resources.cpu: must be a positive quantity such as 500m or 1Gi, got "lots" (line 2)`},
		{"failFast not a boolean", "failFast: yes please\nsteps:\n" + step("a", ""), `failFast: must be true or false, got a string (line 2)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte("name: p\n" + tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse:\n got %v\nwant %s", err, tc.want)
			}
		})
	}
}
