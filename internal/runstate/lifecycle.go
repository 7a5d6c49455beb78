package runstate

import (
	"fmt"
	"strings"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/pipeline"
	"github.com/flow-ci/flow-ci/internal/shorten"
)

// maxCurrentStep is status.currentStep's maxLength.
const maxCurrentStep = 253

// Pin records the commit and definition once; the steps are planned as Pending.
func Pin(run *v1alpha1.PipelineRun, commit string, def *pipeline.Definition) {
	st := &run.Status
	st.Commit, st.ShortCommit = commit, shorten.SHA(commit)
	st.PipelineName = def.Pipeline.Name
	st.DefinitionDigest = def.Digest
	if all := def.Pipeline.All(); len(st.Steps) != len(all) {
		st.Steps = make([]v1alpha1.StepStatus, len(all))
		for i, step := range all {
			st.Steps[i] = v1alpha1.StepStatus{Name: step.Name, Index: int32(i), Phase: v1alpha1.StepPending,
				DependsOn: step.DependsOn, Finally: step.Finally}
		}
	}
	if st.Progress == "" {
		st.Progress = progress(st.Steps)
	}
}

// NameBranch records the branch a new run builds: spec.branch, unless the run is pinned
// to a revision, whose branch is placed once it was checked (PlaceRevision).
func NameBranch(run *v1alpha1.PipelineRun) {
	if run.Spec.Revision == "" {
		run.Status.Branch = run.Spec.Branch
	}
}

// PlaceRevision records whether a pinned revision is on spec.branch: then the run builds
// that branch, else it is detached (an empty branch).
func PlaceRevision(run *v1alpha1.PipelineRun, onBranch bool) {
	run.Status.Branch, run.Status.Detached = "", !onBranch
	if onBranch {
		run.Status.Branch = run.Spec.Branch
	}
}

// PinCommit records the commit a run resolved before its definition was pinned, so a
// run that ends on a bad file says which commit's file it was.
func PinCommit(run *v1alpha1.PipelineRun, commit string) {
	run.Status.Commit, run.Status.ShortCommit = commit, shorten.SHA(commit)
}

// ExitCode is the exit code a finished run ends a command with: 0 when it succeeded,
// else the exit code of the first step that failed by itself (not allowed to), else 1.
// flowci run and flowci start -f, logs -f and wait all exit with it.
func ExitCode(run *v1alpha1.PipelineRun) int {
	if run.Status.Phase == v1alpha1.PhaseSucceeded {
		return 0
	}
	for _, s := range run.Status.Steps {
		if s.Phase == v1alpha1.StepFailed && s.Reason != v1alpha1.ReasonAllowedFailure && s.ExitCode != nil && *s.ExitCode != 0 {
			return int(*s.ExitCode)
		}
	}
	return 1
}

// Admit starts the run: spec.timeout counts from its startTime.
func Admit(run *v1alpha1.PipelineRun, now metav1.Time) {
	run.Status.StartTime = now.DeepCopy()
	run.Status.Phase = v1alpha1.PhasePending
	run.Status.QueuePosition = 0
	setSucceeded(run, metav1.ConditionUnknown, v1alpha1.ReasonPending, "resolving the commit and reading the pipeline", metav1.Time{})
}

// Queue makes the run wait for what msg says. msg must not change as other runs come
// and go: a queued run's status is written when it is queued and when it starts, not
// each time the queue moves.
func Queue(run *v1alpha1.PipelineRun, msg string) {
	run.Status.Phase = v1alpha1.PhaseQueued
	run.Status.QueuePosition = 0
	setSucceeded(run, metav1.ConditionUnknown, v1alpha1.ReasonQueued, msg, metav1.Time{})
}

// MarkRunning moves a pending run to Running once its first Job exists.
func MarkRunning(run *v1alpha1.PipelineRun, msg string) {
	if run.Status.Phase == v1alpha1.PhaseRunning || run.Status.Phase.IsFinished() {
		return
	}
	run.Status.Phase = v1alpha1.PhaseRunning
	setSucceeded(run, metav1.ConditionUnknown, v1alpha1.ReasonRunning, msg, metav1.Time{})
}

// Summarize sets progress and the running steps, and ends the run once every step has
// ended: with the reason the graph was stopped for, if it was; else with the first step
// of the graph that failed by itself and was not allowed to; else with a failed finally
// step; else Succeeded.
func Summarize(run *v1alpha1.PipelineRun, g Graph, now metav1.Time) {
	st := &run.Status
	if st.Phase.IsFinished() {
		return
	}
	st.Progress = progress(st.Steps)
	st.Artifacts = TotalArtifacts(st.Steps)
	active := Active(st.Steps)
	st.CurrentStep = stepNames(st.Steps, active)
	c := apimeta.FindStatusCondition(st.Conditions, v1alpha1.ConditionSucceeded)
	stopped := GraphStopped(run)
	for _, s := range st.Steps {
		if !IsTerminal(s.Phase) {
			if c != nil && !stopped && len(active) > 0 {
				c.Message = runningMessage(st.Steps, active)
			}
			return
		}
	}
	if stopped {
		phase := v1alpha1.PhaseFailed
		if c.Reason == v1alpha1.ReasonCancelled {
			phase = v1alpha1.PhaseCancelled
		}
		End(run, Ending{Phase: phase, Reason: c.Reason, Message: strings.TrimSuffix(c.Message, finallyNote)}, now)
		return
	}
	if f := firstFailure(st.Steps, g); f >= 0 {
		s := st.Steps[f]
		End(run, Ending{Phase: v1alpha1.PhaseFailed, Reason: s.Reason, Message: failedMessage(s)}, now)
		return
	}
	for i, s := range st.Steps {
		if i < len(g.Steps) && g.Steps[i].Finally && failedByItself(s, g.Steps[i]) {
			End(run, Ending{Phase: v1alpha1.PhaseFailed, Reason: s.Reason, Message: "finally " + failedMessage(s)}, now)
			return
		}
	}
	End(run, Ending{Phase: v1alpha1.PhaseSucceeded, Reason: v1alpha1.ReasonSucceeded, Message: successMessage(st)}, now)
}

// successMessage counts what a succeeded run's steps did, when not all of them ran and
// succeeded.
func successMessage(st *v1alpha1.PipelineRunStatus) string {
	var ok, allowed, skipped, reused int
	for _, s := range st.Steps {
		switch {
		case s.Phase == v1alpha1.StepSucceeded:
			ok++
		case s.Phase == v1alpha1.StepFailed:
			allowed++
		case s.Reason == v1alpha1.ReasonReused:
			reused++
		default:
			skipped++
		}
	}
	if ok == len(st.Steps) {
		return fmt.Sprintf("all %d steps succeeded at %s", ok, st.ShortCommit)
	}
	msg := fmt.Sprintf("succeeded at %s: %d of %d steps succeeded", st.ShortCommit, ok, len(st.Steps))
	if allowed > 0 {
		msg += fmt.Sprintf(", %d failed with allowFailure", allowed)
	}
	if reused > 0 {
		msg += fmt.Sprintf(", %d reused from the run it resumed", reused)
	}
	if skipped > 0 {
		msg += fmt.Sprintf(", %d skipped", skipped)
	}
	return msg
}

// finallyNote ends the Succeeded condition's message while finally steps run after the
// graph was stopped.
const finallyNote = "; its finally steps run"

// StopGraph stops the graph's steps for reason (a cancel, the run's timeout) and lets
// the finally steps run: running steps end Failed (Cancelled for a cancel) with their
// log tails, pending ones are Skipped, and the Succeeded condition records why, so that
// Summarize ends the run with it once the finally steps are done. It returns false when
// the graph was stopped already.
func StopGraph(run *v1alpha1.PipelineRun, g Graph, reason, msg string, tails map[int]string, now metav1.Time) bool {
	if GraphStopped(run) || run.Status.Phase.IsFinished() {
		return false
	}
	stopSteps(run.Status.Steps, g, reason, msg, tails, now)
	setSucceeded(run, metav1.ConditionUnknown, reason, msg+finallyNote, metav1.Time{})
	return true
}

// GraphStopped says whether StopGraph stopped the graph of an active run: its
// Succeeded condition then holds the reason while the finally steps run.
func GraphStopped(run *v1alpha1.PipelineRun) bool {
	c := apimeta.FindStatusCondition(run.Status.Conditions, v1alpha1.ConditionSucceeded)
	if c == nil || run.Status.Phase.IsFinished() {
		return false
	}
	return c.Reason != v1alpha1.ReasonRunning && c.Reason != v1alpha1.ReasonPending && c.Reason != v1alpha1.ReasonQueued
}

// Ending is how a run ends.
type Ending struct {
	// Phase is Succeeded, Failed or Cancelled.
	Phase v1alpha1.PipelineRunPhase
	// Reason and Message go on the Succeeded condition, and the reason on every step
	// this ending stops.
	Reason, Message string
	// Skipped is the message of steps that never ran; "skipped: <Reason>" when empty.
	Skipped string
	// Tails are the log tails of the running steps this ending stops, by step index.
	// A stopped step without one gets Message.
	Tails map[int]string
}

// End ends the run, once: the first outcome wins and End returns false after it. Running
// steps are stopped (Failed, or Cancelled when the run is), steps that never ran are
// Skipped, and the Succeeded condition is set with the run's generation. Every way a run
// ends goes through here: the normal end, a permanent error, the run timeout, cancel,
// Forbid, Replace and the watchdogs.
func End(run *v1alpha1.PipelineRun, e Ending, now metav1.Time) bool {
	st := &run.Status
	if st.Phase.IsFinished() {
		return false
	}
	defer func() {
		if path := CriticalPath(st.Steps); len(path) > 0 {
			if st.Timing == nil {
				st.Timing = &v1alpha1.RunTiming{}
			}
			st.Timing.CriticalPath = path
		}
	}()
	skipped := e.Skipped
	if skipped == "" {
		skipped = "skipped: " + e.Reason
	}
	for i := range st.Steps {
		s := &st.Steps[i]
		switch {
		case s.Phase == v1alpha1.StepRunning:
			s.Phase, s.Reason, s.CompletionTime = v1alpha1.StepFailed, e.Reason, now.DeepCopy()
			if e.Phase == v1alpha1.PhaseCancelled {
				s.Phase = v1alpha1.StepCancelled
			}
			s.Message = shorten.Tail(e.Message, v1alpha1.MaxMessageBytes)
			if tail := e.Tails[i]; tail != "" {
				s.Message = shorten.Tail(tail, v1alpha1.MaxMessageBytes)
			}
		case !IsTerminal(s.Phase):
			s.Phase, s.Message = v1alpha1.StepSkipped, skipped
		}
	}
	status := metav1.ConditionFalse
	if e.Phase == v1alpha1.PhaseSucceeded {
		status = metav1.ConditionTrue
	}
	st.Phase = e.Phase
	st.Progress = progress(st.Steps)
	st.CurrentStep = ""
	st.QueuePosition = 0
	st.CompletionTime = now.DeepCopy()
	setSucceeded(run, status, e.Reason, e.Message, now)
	return true
}

// setSucceeded writes the Succeeded condition with the run's generation. A zero now
// leaves apimeta to stamp the transition time.
func setSucceeded(run *v1alpha1.PipelineRun, status metav1.ConditionStatus, reason, msg string, now metav1.Time) {
	apimeta.SetStatusCondition(&run.Status.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionSucceeded, Status: status, Reason: reason,
		Message: shorten.Tail(msg, v1alpha1.MaxMessageBytes), LastTransitionTime: now,
		ObservedGeneration: run.Generation,
	})
}

// progress is ended steps over all steps.
func progress(steps []v1alpha1.StepStatus) string {
	n := 0
	for _, s := range steps {
		if IsTerminal(s.Phase) {
			n++
		}
	}
	return fmt.Sprintf("%d/%d", n, len(steps))
}

// stepNames joins the names of the steps at idx with commas, within status.currentStep's
// bound: the names that do not fit are counted instead ("lint,test,+3").
func stepNames(steps []v1alpha1.StepStatus, idx []int) string {
	names := make([]string, len(idx))
	for n, i := range idx {
		names[n] = steps[i].Name
	}
	for k := len(names); k > 0; k-- {
		s := strings.Join(names[:k], ",")
		if k < len(names) {
			s += fmt.Sprintf(",+%d", len(names)-k)
		}
		if len(s) <= maxCurrentStep {
			return s
		}
	}
	if len(names) == 0 {
		return ""
	}
	return fmt.Sprintf("+%d", len(names))
}

func runningMessage(steps []v1alpha1.StepStatus, active []int) string {
	if len(active) == 1 {
		i := active[0]
		return fmt.Sprintf("running step %d/%d %q", i+1, len(steps), steps[i].Name)
	}
	return fmt.Sprintf("running %d steps: %s", len(active), stepNames(steps, active))
}

func failedMessage(s v1alpha1.StepStatus) string {
	switch {
	case s.Reason == v1alpha1.ReasonStepTimedOut:
		return fmt.Sprintf("step %q exceeded its timeout", s.Name)
	case s.ExitCode != nil:
		return fmt.Sprintf("step %q failed with exit code %d", s.Name, *s.ExitCode)
	case s.Message != "":
		// FailStep's reasons (a watchdog, a deleted Job) carry their cause, not a log tail.
		return fmt.Sprintf("step %q failed: %s", s.Name, s.Message)
	}
	return fmt.Sprintf("step %q failed", s.Name)
}
