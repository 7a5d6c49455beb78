package runstate

import (
	"fmt"
	"path"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/pipeline"
	"github.com/flow-ci/flow-ci/internal/shorten"
)

// Graph is what scheduling needs of a pipeline, indexed like status.steps: the graph's
// steps, then the finally steps.
type Graph struct {
	Steps    []Node
	FailFast bool
	// MaxParallel bounds the steps of a run that run at once (0: no bound).
	MaxParallel int
	// Branch is the run's branch; empty when the run is detached.
	Branch string
	// Event is the run's event (when.event); Exposed the Secrets its spec exposes.
	Event   v1alpha1.Event
	Exposed []string
}

// Node is one step of the graph.
type Node struct {
	DependsOn    []int
	Branches     []string
	Status       string // finally steps' condition on the graph's outcome
	Events       []string
	Secrets      []string // the Secrets the step asks for
	AllowFailure bool
	Finally      bool
}

// GraphOf builds the graph of a parsed pipeline.
func GraphOf(p *pipeline.Pipeline, branch string, maxParallel int) Graph {
	all := p.All()
	index := make(map[string]int, len(all))
	for i, s := range all {
		index[s.Name] = i
	}
	g := Graph{FailFast: p.FailFast, MaxParallel: maxParallel, Branch: branch, Steps: make([]Node, len(all))}
	for i, s := range all {
		n := Node{Branches: s.When.Branch, Status: s.When.Status, Events: s.When.Event, AllowFailure: s.AllowFailure, Finally: s.Finally}
		for _, u := range s.Secrets {
			n.Secrets = append(n.Secrets, u.Name)
		}
		for _, d := range s.DependsOn {
			n.DependsOn = append(n.DependsOn, index[d])
		}
		g.Steps[i] = n
	}
	return g
}

// ownFailures are the reasons a step failed by itself, which allowFailure forgives
// and failFast reacts to; a step stopped because of the run (its timeout, a cancel)
// did not fail by itself.
var ownFailures = map[string]bool{
	v1alpha1.ReasonStepFailed: true, v1alpha1.ReasonStepTimedOut: true, v1alpha1.ReasonStepJobDeleted: true,
	v1alpha1.ReasonImagePullFailed: true, v1alpha1.ReasonCreateContainerFailed: true, v1alpha1.ReasonUnschedulable: true,
	v1alpha1.ReasonSecretNotExposed: true, v1alpha1.ReasonServiceNotReady: true,
}

// failedByItself says whether a step failed by itself and was not allowed to.
func failedByItself(s v1alpha1.StepStatus, n Node) bool {
	return s.Phase == v1alpha1.StepFailed && ownFailures[s.Reason] && !n.AllowFailure
}

// satisfied says whether a step that ended lets its dependents run: it succeeded, was
// skipped because its when did not hold or reused by a resume, or failed with allowFailure.
func satisfied(s v1alpha1.StepStatus) bool {
	switch s.Phase {
	case v1alpha1.StepSucceeded:
		return true
	case v1alpha1.StepSkipped:
		return s.Reason == v1alpha1.ReasonWhenFalse || s.Reason == v1alpha1.ReasonReused
	case v1alpha1.StepFailed:
		return s.Reason == v1alpha1.ReasonAllowedFailure
	}
	return false
}

// Schedule moves the graph forward and returns the steps whose Jobs may start now, at
// most MaxParallel running at once, in index order. On the way it marks allowed
// failures, stops the graph at a failure when failFast says so (tails are the log tails
// of the running steps that FailFastStops named), skips the steps whose when does not
// hold (WhenFalse, done for their dependents) and those behind a step that did not
// succeed (UpstreamFailed), and once the graph has ended applies the finally steps'
// conditions.
func Schedule(run *v1alpha1.PipelineRun, g Graph, tails map[int]string, now metav1.Time) []int {
	steps := run.Status.Steps
	if run.Status.Phase.IsFinished() || len(steps) != len(g.Steps) {
		return nil
	}
	for i := range steps {
		if steps[i].Phase == v1alpha1.StepFailed && ownFailures[steps[i].Reason] && g.Steps[i].AllowFailure {
			steps[i].Reason = v1alpha1.ReasonAllowedFailure
		}
	}
	if g.FailFast {
		if failed := firstFailure(steps, g); failed >= 0 {
			stopSteps(steps, g, v1alpha1.ReasonFailFast, fmt.Sprintf("stopped: step %q failed (failFast)", steps[failed].Name), tails, now)
		}
	}
	settle(steps, g, now)
	graphDone, graphOK := true, true
	for i, s := range steps {
		if !g.Steps[i].Finally {
			graphDone = graphDone && IsTerminal(s.Phase)
			graphOK = graphOK && IsTerminal(s.Phase) && satisfied(s)
		}
	}
	running := len(Active(steps))
	var ready []int
	for i := range steps {
		if steps[i].Phase != v1alpha1.StepPending {
			continue
		}
		n := g.Steps[i]
		if n.Finally {
			if !graphDone {
				continue
			}
			if why := g.whenFails(n); why != "" || n.Status == pipeline.StatusSuccess && !graphOK || n.Status == pipeline.StatusFailure && graphOK {
				if why == "" {
					why = "its when.status does not hold for this run"
				}
				skip(&steps[i], v1alpha1.ReasonWhenFalse, "skipped: "+why)
				continue
			}
			if g.failUnexposed(&steps[i], n, now) {
				continue
			}
		} else if !depsSatisfied(steps, n) {
			continue
		}
		if g.MaxParallel > 0 && running+len(ready) >= g.MaxParallel {
			continue
		}
		ready = append(ready, i)
	}
	return ready
}

// settle skips the graph's pending steps that can never run, repeating until nothing
// changes: those behind a step that did not succeed (UpstreamFailed) and those whose
// when does not hold (WhenFalse); and it fails those whose dependencies are satisfied
// but that ask for a Secret the run does not expose (SecretNotExposed), so that their
// dependents are skipped in the same pass.
func settle(steps []v1alpha1.StepStatus, g Graph, now metav1.Time) {
	for changed := true; changed; {
		changed = false
		for i := range steps {
			if g.Steps[i].Finally || steps[i].Phase != v1alpha1.StepPending {
				continue
			}
			blocked, waiting := "", false
			for _, d := range g.Steps[i].DependsOn {
				switch dep := steps[d]; {
				case !IsTerminal(dep.Phase):
					waiting = true
				case !satisfied(dep) && blocked == "":
					blocked = dep.Name
				}
			}
			switch {
			case blocked != "":
				skip(&steps[i], v1alpha1.ReasonUpstreamFailed, fmt.Sprintf("skipped: step %q did not succeed", blocked))
				changed = true
			case waiting:
			case g.whenFails(g.Steps[i]) != "":
				skip(&steps[i], v1alpha1.ReasonWhenFalse, "skipped: "+g.whenFails(g.Steps[i]))
				changed = true
			case g.failUnexposed(&steps[i], g.Steps[i], now):
				changed = true
			}
		}
	}
}

// whenFails says which of a step's when.branch and when.event does not hold for the
// run, or "".
func (g Graph) whenFails(n Node) string {
	if !branchMatches(n.Branches, g.Branch) {
		return "the branch does not match when.branch"
	}
	if len(n.Events) > 0 && !slices.Contains(n.Events, string(g.Event)) {
		return fmt.Sprintf("the run's event %q is not in when.event", g.Event)
	}
	return ""
}

// failUnexposed fails a step that asks for a Secret the run does not expose. It fails
// rather than being skipped, since a deploy step skipped for want of its token would
// leave a green run that deployed nothing; and it never runs with an empty value.
func (g Graph) failUnexposed(s *v1alpha1.StepStatus, n Node, now metav1.Time) bool {
	for _, name := range n.Secrets {
		if !slices.Contains(g.Exposed, name) {
			s.Phase, s.Reason, s.CompletionTime = v1alpha1.StepFailed, v1alpha1.ReasonSecretNotExposed, now.DeepCopy()
			s.Message = fmt.Sprintf("the step asks for Secret %q, which this run does not expose (spec.secrets)", name)
			return true
		}
	}
	return false
}

func depsSatisfied(steps []v1alpha1.StepStatus, n Node) bool {
	for _, d := range n.DependsOn {
		if !IsTerminal(steps[d].Phase) || !satisfied(steps[d]) {
			return false
		}
	}
	return true
}

// firstFailure is the first graph step, by index, that failed by itself and was not
// allowed to, or -1.
func firstFailure(steps []v1alpha1.StepStatus, g Graph) int {
	for i, s := range steps {
		if !g.Steps[i].Finally && failedByItself(s, g.Steps[i]) {
			return i
		}
	}
	return -1
}

// branchMatches applies when.branch: any branch when empty; a detached run (no branch)
// matches only "*".
func branchMatches(globs []string, branch string) bool {
	if len(globs) == 0 {
		return true
	}
	for _, g := range globs {
		if branch == "" {
			if g == "*" {
				return true
			}
		} else if ok, _ := path.Match(g, branch); ok {
			return true
		}
	}
	return false
}

func skip(s *v1alpha1.StepStatus, reason, msg string) {
	s.Phase, s.Reason, s.Message = v1alpha1.StepSkipped, reason, msg
}

// FailFastStops lists the running steps that Schedule will stop for failFast, so that
// the caller can read their log tails first; nil when failFast does not apply now.
func FailFastStops(run *v1alpha1.PipelineRun, g Graph) []int {
	steps := run.Status.Steps
	if !g.FailFast || run.Status.Phase.IsFinished() || len(steps) != len(g.Steps) || firstFailure(steps, g) < 0 {
		return nil
	}
	var out []int
	for _, i := range Active(steps) {
		if !g.Steps[i].Finally {
			out = append(out, i)
		}
	}
	return out
}

// stopSteps stops the graph's steps, leaving the finally steps alone: running ones end
// Failed (Cancelled for a cancel or failFast) with reason and their log tail, pending
// ones are Skipped with reason.
func stopSteps(steps []v1alpha1.StepStatus, g Graph, reason, msg string, tails map[int]string, now metav1.Time) {
	for i := range steps {
		if i < len(g.Steps) && g.Steps[i].Finally {
			continue
		}
		s := &steps[i]
		switch {
		case s.Phase == v1alpha1.StepRunning:
			s.Phase, s.Reason, s.CompletionTime = v1alpha1.StepFailed, reason, now.DeepCopy()
			if reason == v1alpha1.ReasonCancelled || reason == v1alpha1.ReasonFailFast {
				s.Phase = v1alpha1.StepCancelled
			}
			s.Message = shorten.Tail(msg, v1alpha1.MaxMessageBytes)
			if tail := tails[i]; tail != "" {
				s.Message = shorten.Tail(tail, v1alpha1.MaxMessageBytes)
			}
		case s.Phase == v1alpha1.StepPending:
			skip(s, reason, "skipped: "+reason)
		}
	}
}
