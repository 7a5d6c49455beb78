package runstate

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/pipeline"
)

// Step states in the tables: phase, then the reason's initial.
var codes = map[string]struct {
	phase  v1alpha1.StepPhase
	reason string
}{
	"P":  {v1alpha1.StepPending, ""},
	"R":  {v1alpha1.StepRunning, ""},
	"S":  {v1alpha1.StepSucceeded, ""},
	"F":  {v1alpha1.StepFailed, v1alpha1.ReasonStepFailed},
	"FI": {v1alpha1.StepFailed, v1alpha1.ReasonImagePullFailed},
	"FT": {v1alpha1.StepFailed, v1alpha1.ReasonTimedOut},
	"FA": {v1alpha1.StepFailed, v1alpha1.ReasonAllowedFailure},
	"KW": {v1alpha1.StepSkipped, v1alpha1.ReasonWhenFalse},
	"KR": {v1alpha1.StepSkipped, v1alpha1.ReasonReused},
	"KU": {v1alpha1.StepSkipped, v1alpha1.ReasonUpstreamFailed},
	"KF": {v1alpha1.StepSkipped, v1alpha1.ReasonFailFast},
	"KT": {v1alpha1.StepSkipped, v1alpha1.ReasonTimedOut},
	"KC": {v1alpha1.StepSkipped, v1alpha1.ReasonCancelled},
	"CF": {v1alpha1.StepCancelled, v1alpha1.ReasonFailFast},
	"C":  {v1alpha1.StepCancelled, v1alpha1.ReasonCancelled},
}

func graphRun(states ...string) *v1alpha1.PipelineRun {
	run := runningRun()
	for i, c := range states {
		code, ok := codes[c]
		if !ok {
			panic("unknown state " + c)
		}
		run.Status.Steps = append(run.Status.Steps, v1alpha1.StepStatus{Name: string(rune('a' + i)), Index: int32(i), Phase: code.phase, Reason: code.reason})
	}
	return run
}

func statesOf(run *v1alpha1.PipelineRun) []string {
	out := make([]string, len(run.Status.Steps))
	for i, s := range run.Status.Steps {
		for c, code := range codes {
			if code.phase == s.Phase && code.reason == s.Reason {
				out[i] = c
			}
		}
		if out[i] == "" {
			out[i] = string(s.Phase) + "/" + s.Reason
		}
	}
	return out
}

// dag is a graph on branch main; deps lists each step's dependencies as indexes.
func dag(deps ...[]int) Graph {
	g := Graph{Branch: "main"}
	for _, d := range deps {
		g.Steps = append(g.Steps, Node{DependsOn: d})
	}
	return g
}

func with(g Graph, i int, f func(*Node)) Graph {
	g.Steps = append([]Node(nil), g.Steps...)
	f(&g.Steps[i])
	return g
}

func deps(d ...int) []int { return d }

var (
	diamond = dag(nil, deps(0), deps(0), deps(1, 2))   // a → b, c → d
	chain   = dag(nil, deps(0), deps(1))               // the seed file: a, b, c in order
	forked  = dag(nil, deps(0), deps(0), deps(1), nil) // a → b → d, a → c, and e alone
)

func allowFailure(n *Node) { n.AllowFailure = true }
func finally(status string) func(*Node) {
	return func(n *Node) { n.Finally, n.Status = true, status }
}

func TestSchedule(t *testing.T) {
	cases := []struct {
		name   string
		g      Graph
		before []string
		ready  []int
		after  []string // the states after Schedule; before when nil
	}{
		// A step starts when all its dependencies are Succeeded, Skipped, or Failed with allowFailure.
		{"the root starts first", diamond, []string{"P", "P", "P", "P"}, []int{0}, nil},
		{"a handoff starts every newly ready step", diamond, []string{"S", "P", "P", "P"}, []int{1, 2}, nil},
		{"a join waits for all its dependencies", diamond, []string{"S", "S", "R", "P"}, nil, nil},
		{"the join starts once both ended well", diamond, []string{"S", "S", "S", "P"}, []int{3}, nil},
		{"running steps are not started again", diamond, []string{"S", "R", "R", "P"}, nil, nil},
		{"the seed file runs in sequence", chain, []string{"S", "P", "P"}, []int{1}, nil},
		{"roots and independent steps start together", forked, []string{"P", "P", "P", "P", "P"}, []int{0, 4}, nil},
		{"a resume starts what follows the reused steps", diamond, []string{"KR", "KR", "P", "P"}, []int{2}, nil},

		// A step whose when is false is Skipped (WhenFalse) and counts as satisfied.
		{"when.branch false skips the step, and its dependent starts in the same pass", with(chain, 1, func(n *Node) { n.Branches = []string{"release/*"} }),
			[]string{"S", "P", "P"}, []int{2}, []string{"S", "KW", "P"}},
		{"Woodpecker #3278: a skipped step does not block its dependents", with(chain, 1, func(n *Node) { n.Branches = []string{"release/*"} }),
			[]string{"S", "KW", "P"}, []int{2}, nil},
		{"the skip is decided only once the dependencies ended", with(chain, 1, func(n *Node) { n.Branches = []string{"release/*"} }),
			[]string{"R", "P", "P"}, nil, nil},
		{"a matching glob runs the step", with(chain, 1, func(n *Node) { n.Branches = []string{"ma*"} }),
			[]string{"S", "P", "P"}, []int{1}, nil},
		{"a detached run matches only *", func() Graph {
			g := with(dag(nil, nil), 0, func(n *Node) { n.Branches = []string{"main"} })
			g = with(g, 1, func(n *Node) { n.Branches = []string{"*"} })
			g.Branch = ""
			return g
		}(), []string{"P", "P"}, []int{1}, []string{"KW", "P"}},

		// A failed step makes its dependents Skipped (UpstreamFailed); independent branches keep running.
		{"a failure skips its dependents, transitively", forked, []string{"S", "F", "R", "P", "R"}, nil, []string{"S", "F", "R", "KU", "R"}},
		{"a failure in b skips d but e still starts", forked, []string{"S", "F", "S", "P", "P"}, []int{4}, []string{"S", "F", "S", "KU", "P"}},
		{"the diamond's join is skipped when one side failed", diamond, []string{"S", "F", "R", "P"}, nil, []string{"S", "F", "R", "KU"}},
		{"a step that failed by a watchdog counts as failed", chain, []string{"S", "FI", "P"}, nil, []string{"S", "FI", "KU"}},
		{"a skipped step skips its own dependents", chain, []string{"F", "P", "P"}, nil, []string{"F", "KU", "KU"}},

		// allowFailure: the step ends Failed with AllowedFailure and its dependents run.
		{"Woodpecker #3823: the dependents of an allowed failure run", with(chain, 1, allowFailure), []string{"S", "F", "P"}, []int{2}, []string{"S", "FA", "P"}},
		{"an allowed failure still running is waited for", with(chain, 1, allowFailure), []string{"S", "R", "P"}, nil, nil},
		{"allowFailure forgives a watchdog failure too", with(chain, 1, allowFailure), []string{"S", "FI", "P"}, []int{2}, []string{"S", "FA", "P"}},

		// failFast: the first failure stops the running steps (FailFast) and starts nothing more.
		{"Tekton #1684: failFast stops the running steps", func() Graph { g := forked; g.FailFast = true; return g }(),
			[]string{"S", "F", "R", "P", "R"}, nil, []string{"S", "F", "CF", "KF", "CF"}},
		{"failFast starts nothing more", func() Graph { g := forked; g.FailFast = true; return g }(),
			[]string{"S", "F", "S", "P", "P"}, nil, []string{"S", "F", "S", "KF", "KF"}},
		{"failFast ignores allowed failures", func() Graph { g := with(forked, 1, allowFailure); g.FailFast = true; return g }(),
			[]string{"S", "F", "R", "P", "R"}, []int{3}, []string{"S", "FA", "R", "P", "R"}},
		{"without failFast independent steps go on", forked, []string{"S", "F", "R", "P", "R"}, nil, []string{"S", "F", "R", "KU", "R"}},

		// finally steps run after every other step ended, whatever the outcome.
		{"finally waits for the graph", with(dag(nil, nil, nil), 2, finally("")), []string{"S", "R", "P"}, nil, nil},
		{"finally runs after success", with(dag(nil, nil, nil), 2, finally("")), []string{"S", "S", "P"}, []int{2}, nil},
		{"finally runs after a failure", with(dag(nil, deps(0), nil), 2, finally(pipeline.StatusAlways)), []string{"F", "P", "P"}, []int{2}, []string{"F", "KU", "P"}},
		{"finally runs after a failFast stop", func() Graph {
			g := with(dag(nil, nil, nil), 2, finally(""))
			g.FailFast = true
			return g
		}(), []string{"F", "R", "P"}, []int{2}, []string{"F", "CF", "P"}},
		{"finally runs after a timeout stop", with(dag(nil, nil, nil), 2, finally("")), []string{"S", "FT", "P"}, []int{2}, nil},
		{"finally runs after a cancel", with(dag(nil, nil, nil), 2, finally("")), []string{"S", "C", "P"}, []int{2}, nil},
		{"status failure runs after a failure", with(dag(nil, nil), 1, finally(pipeline.StatusFailure)), []string{"F", "P"}, []int{1}, nil},
		{"status failure is skipped after success", with(dag(nil, nil), 1, finally(pipeline.StatusFailure)), []string{"S", "P"}, nil, []string{"S", "KW"}},
		{"status success runs after success", with(dag(nil, nil), 1, finally(pipeline.StatusSuccess)), []string{"S", "P"}, []int{1}, nil},
		{"GitLab #368733: a deploy on success never runs after a failed test", with(dag(nil, nil), 1, finally(pipeline.StatusSuccess)),
			[]string{"F", "P"}, nil, []string{"F", "KW"}},
		{"status success counts an allowed failure as success", func() Graph {
			return with(with(dag(nil, nil), 0, allowFailure), 1, finally(pipeline.StatusSuccess))
		}(), []string{"F", "P"}, []int{1}, []string{"FA", "P"}},
		{"status success counts a skip as success", func() Graph {
			return with(with(dag(nil, nil), 0, func(n *Node) { n.Branches = []string{"x"} }), 1, finally(pipeline.StatusSuccess))
		}(), []string{"P", "P"}, []int{1}, []string{"KW", "P"}},
		{"finally steps are not gated by each other", func() Graph {
			return with(with(dag(nil, nil, nil), 1, finally("")), 2, finally(""))
		}(), []string{"S", "P", "P"}, []int{1, 2}, nil},
		{"a finally step's branch is checked", with(with(dag(nil, nil), 1, finally("")), 1, func(n *Node) { n.Branches = []string{"release/*"} }),
			[]string{"S", "P"}, nil, []string{"S", "KW"}},

		// --max-parallel-steps bounds the active Jobs of one run.
		{"max parallel bounds a wide level", func() Graph { g := dag(nil, nil, nil, nil, nil, nil); g.MaxParallel = 4; return g }(),
			[]string{"P", "P", "P", "P", "P", "P"}, []int{0, 1, 2, 3}, nil},
		{"max parallel counts the running steps", func() Graph { g := dag(nil, nil, nil, nil, nil, nil); g.MaxParallel = 4; return g }(),
			[]string{"R", "S", "R", "R", "P", "P"}, []int{4}, nil},
		{"max parallel bounds finally steps too", func() Graph {
			g := with(with(dag(nil, nil, nil), 1, finally("")), 2, finally(""))
			g.MaxParallel = 1
			return g
		}(), []string{"S", "P", "P"}, []int{1}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run := graphRun(tc.before...)
			got := Schedule(run, tc.g, map[int]string{}, t2)
			if diff := cmp.Diff(tc.ready, got); diff != "" {
				t.Errorf("ready (-want +got):\n%s", diff)
			}
			after := tc.after
			if after == nil {
				after = tc.before
			}
			if diff := cmp.Diff(after, statesOf(run)); diff != "" {
				t.Errorf("states (-want +got):\n%s", diff)
			}
		})
	}
}

func TestScheduleLeavesAFinishedRunAlone(t *testing.T) {
	run := graphRun("S", "P")
	run.Status.Phase = v1alpha1.PhaseFailed
	if got := Schedule(run, dag(nil, nil), nil, t2); got != nil {
		t.Errorf("ready %v for a finished run", got)
	}
	// A definition that no longer matches the status never schedules anything.
	run = graphRun("P", "P")
	if got := Schedule(run, dag(nil), nil, t2); got != nil {
		t.Errorf("ready %v with a graph of the wrong size", got)
	}
}

func TestFailFastKeepsTheLogTails(t *testing.T) {
	g := forked
	g.FailFast = true
	run := graphRun("S", "F", "R", "P", "R")
	stops := FailFastStops(run, g)
	if diff := cmp.Diff([]int{2, 4}, stops); diff != "" {
		t.Fatalf("FailFastStops (-want +got):\n%s", diff)
	}
	Schedule(run, g, map[int]string{2: "c's last lines"}, t2)
	if m := run.Status.Steps[2].Message; m != "c's last lines" {
		t.Errorf("stopped step c: message %q, want its log tail", m)
	}
	if m := run.Status.Steps[4].Message; !strings.Contains(m, `step "b" failed (failFast)`) {
		t.Errorf("stopped step e without a tail: message %q", m)
	}
	if !run.Status.Steps[2].CompletionTime.Equal(&t2) {
		t.Errorf("stopped step c: completionTime %v", run.Status.Steps[2].CompletionTime)
	}
	if FailFastStops(run, g) != nil {
		t.Error("FailFastStops names steps after they were stopped")
	}
	if FailFastStops(graphRun("S", "F", "R", "P", "R"), forked) != nil {
		t.Error("FailFastStops without failFast")
	}
}

func TestGraphOf(t *testing.T) {
	def, err := pipeline.Parse([]byte(`
name: graph
failFast: true
steps:
- {name: lint, dependsOn: [], commands: [x]}
- {name: test, dependsOn: [], commands: [x], allowFailure: true}
- {name: build, dependsOn: [lint, test], when: {branch: [main]}, commands: [x]}
- {name: e2e, commands: [x]}
finally:
- {name: notify, when: {status: failure}, commands: [x]}
`))
	if err != nil {
		t.Fatal(err)
	}
	g := GraphOf(&def.Pipeline, "main", 4)
	want := Graph{FailFast: true, MaxParallel: 4, Branch: "main", Steps: []Node{
		{}, {AllowFailure: true}, {DependsOn: []int{0, 1}, Branches: []string{"main"}}, {DependsOn: []int{2}},
		{Finally: true, Status: pipeline.StatusFailure},
	}}
	if diff := cmp.Diff(want, g); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
