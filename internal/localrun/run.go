// Package localrun runs a pipeline on the developer's machine the way the operator runs
// it on a cluster: the same parsed file, the same graph and scheduling
// (internal/runstate), the same step script and environment (internal/render), with
// /bin/sh in a checkout instead of a Job on a volume. It is the CLI's `flowci run`.
package localrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/mask"
	"github.com/flow-ci/flow-ci/internal/pipeline"
	"github.com/flow-ci/flow-ci/internal/render"
	"github.com/flow-ci/flow-ci/internal/runstate"
	"github.com/flow-ci/flow-ci/internal/shorten"
)

// Options of a local run.
type Options struct {
	// Dir is the checkout the steps run in (a step's workingDir is relative to it).
	Dir string
	// Home is the steps' HOME, shared by every step as /workspace/home is on a cluster.
	Home string
	// Repo, Branch and Commit fill FLOWCI_REPO, FLOWCI_BRANCH and FLOWCI_COMMIT, and
	// Branch decides when.branch, as on a cluster.
	Repo, Branch, Commit string
	// Only runs just this step; From takes the steps it depends on as done.
	Only, From string
	// Jobs bounds the steps that run at once (the operator's --max-parallel-steps).
	Jobs int
	// Shell runs each step's script (default /bin/sh).
	Shell string
	// Out receives the steps' output; with Jobs > 1 each line is prefixed [step].
	Out io.Writer
	// Secrets are the run's Secrets; their values are masked in Out.
	Secrets Secrets
	// SecretsDir holds the files of the Secrets the steps ask for ($FLOWCI_SECRETS);
	// Run makes a private temporary one when it is empty.
	SecretsDir string
	// ArtifactsDir receives the files steps keep (their artifacts), at their paths;
	// empty keeps none.
	ArtifactsDir string

	masker *mask.Masker // of Secrets, set by Run
}

// Result is how a local run ended.
type Result struct {
	Run *v1alpha1.PipelineRun
	// ExitCode is 0 when the pipeline succeeded, else the failed step's exit code (1
	// when it has none, e.g. it timed out).
	ExitCode int
}

// Env is the environment of step i: what the container RenderStepJob renders sees (the
// values before their escaping for the kubelet), with HOME and FLOWCI_SECRETS on this
// machine (secretsDir "" keeps the cluster's), plus PATH
// (the image provides one on a cluster).
func Env(run *v1alpha1.PipelineRun, p *pipeline.Pipeline, i int, home, secretsDir string) []string {
	var out []string
	for _, e := range render.StepEnv(run, p, *p.Step(i)) {
		if e.Name == "HOME" && e.Value == render.HomeDir {
			e.Value = home
		}
		if e.Name == "FLOWCI_SECRETS" && secretsDir != "" {
			e.Value = secretsDir
		}
		out = append(out, e.Name+"="+e.Value)
	}
	return append(out, "PATH="+os.Getenv("PATH"))
}

// LocalRun is the run object a local run schedules with: named "local", Running, with
// the steps of p planned as on a cluster.
func LocalRun(p *pipeline.Pipeline, digest string, o Options) *v1alpha1.PipelineRun {
	run := &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "local"}, Spec: v1alpha1.PipelineRunSpec{RepoURL: o.Repo, Branch: o.Branch}}
	for _, name := range o.Secrets.Names() {
		run.Spec.Secrets = append(run.Spec.Secrets, v1alpha1.RunSecret{Name: name})
	}
	runstate.Pin(run, o.Commit, &pipeline.Definition{Pipeline: *p, Digest: digest})
	run.Status.Branch = o.Branch
	runstate.MarkRunning(run, "running locally")
	return run
}

type ended struct {
	index int
	runstate.StepEnd
}

// Run runs p and returns how it ended. ctx cancels the running steps.
func Run(ctx context.Context, p *pipeline.Pipeline, digest string, o Options) (Result, error) {
	if o.Shell == "" {
		o.Shell = "/bin/sh"
	}
	if o.Jobs <= 0 {
		o.Jobs = 1
	}
	run := LocalRun(p, digest, o)
	if err := selectSteps(run, p, o.Only, o.From); err != nil {
		return Result{}, err
	}
	g := runstate.GraphOf(p, o.Branch, o.Jobs)
	g.Event, g.Exposed = v1alpha1.EventOf(run), run.Spec.SecretNames()
	cleanup, err := prepareSecrets(&o, p)
	if err != nil {
		return Result{}, err
	}
	defer cleanup()
	out := newOutput(o.Out, o.Jobs > 1)
	done := make(chan ended)
	cancels := map[int]context.CancelFunc{}
	tails := map[int]string{}
	for {
		now := metav1.Now()
		for _, i := range runstate.FailFastStops(run, g) {
			if cancel, ok := cancels[i]; ok {
				cancel()
				e := <-done // the stopped step, or another that ended meanwhile
				record(run, e, out)
				delete(cancels, e.index)
				tails[e.index] = e.Tail
			}
		}
		for _, i := range runstate.Schedule(run, g, tails, now) {
			s := &run.Status.Steps[i]
			runstate.StartStep(s, now)
			sctx, cancel := context.WithCancel(ctx)
			cancels[i] = cancel
			out.header(s.Name, "started")
			if note := ServicesNote(p.Step(i)); note != "" {
				out.header(s.Name, note)
			}
			env := Env(run, p, i, o.Home, o.SecretsDir)
			go func(i int) {
				e := runStep(sctx, p, i, env, o, out)
				w := out.step(p.Step(i).Name)
				keepArtifacts(p.Step(i), e, o, w)
				w.Flush()
				done <- e
			}(i)
		}
		runstate.Summarize(run, g, metav1.Now())
		if run.Status.Phase.IsFinished() || len(cancels) == 0 {
			break
		}
		e := <-done
		cancels[e.index]()
		delete(cancels, e.index)
		record(run, e, out)
	}
	return Result{Run: run, ExitCode: runstate.ExitCode(run)}, nil
}

// record ends a step the way the operator ends one from its Job (runstate.EndStep).
func record(run *v1alpha1.PipelineRun, e ended, out *output) {
	s := &run.Status.Steps[e.index]
	if runstate.IsTerminal(s.Phase) {
		return // stopped by failFast already
	}
	now := metav1.Now()
	runstate.EndStep(s, e.StepEnd, now)
	out.header(s.Name, fmt.Sprintf("%s in %s", s.Phase, now.Sub(s.StartTime.Time).Round(time.Millisecond)))
}

// runStep runs step i's script with its retries and timeout, and says how it ended.
func runStep(ctx context.Context, p *pipeline.Pipeline, i int, env []string, o Options, out *output) ended {
	step := p.Step(i)
	dir := filepath.Join(o.Dir, filepath.FromSlash(step.WorkingDir))
	if step.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, step.Timeout)
		defer cancel()
	}
	secretEnv, err := o.Secrets.stepEnv(step)
	if err != nil {
		return ended{index: i, StepEnd: runstate.StepEnd{Reason: v1alpha1.ReasonCreateContainerFailed, Tail: err.Error()}}
	}
	env = append(env, secretEnv...)
	var e ended
	for attempt := 0; attempt <= step.Retries; attempt++ {
		e = ended{index: i, StepEnd: runstate.StepEnd{Attempts: int32(attempt + 1)}}
		w := out.step(step.Name)
		tail := &shorten.TailWriter{Max: v1alpha1.MaxMessageBytes}
		cmd := exec.CommandContext(ctx, o.Shell, "-c", render.StepScript(step.Commands))
		cmd.Dir, cmd.Env = dir, env
		// Masked before the tail is cut, so a value cannot show by half at its start.
		stdout, stderr := o.masked(io.MultiWriter(w, tail)), o.masked(io.MultiWriter(w, tail))
		cmd.Stdout, cmd.Stderr = stdout, stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		// Like a pod's termination: SIGTERM to the step's process group, then SIGKILL.
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
		cmd.WaitDelay = 10 * time.Second
		err := cmd.Run()
		_ = stdout.Close()
		_ = stderr.Close()
		w.Flush()
		e.Tail = tail.String()
		var exit *exec.ExitError
		switch {
		case err == nil:
			e.ExitCode = new(int32(0))
			return e
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			e.Reason = v1alpha1.ReasonStepTimedOut
			return e
		case errors.As(err, &exit):
			code := int32(exit.ExitCode())
			if code < 0 {
				code = 1 // killed by a signal (a cancel)
			}
			e.Reason, e.ExitCode = v1alpha1.ReasonStepFailed, &code
		default:
			e.Reason, e.ExitCode, e.Tail = v1alpha1.ReasonStepFailed, new(int32(127)), err.Error()
		}
		if ctx.Err() != nil {
			return e
		}
	}
	return e
}

// selectSteps marks the steps --step or --from leave out as skipped (WhenFalse: done for
// their dependents, as on a cluster).
func selectSteps(run *v1alpha1.PipelineRun, p *pipeline.Pipeline, only, from string) error {
	if only == "" && from == "" {
		return nil
	}
	all := p.All()
	index := map[string]int{}
	for i, s := range all {
		index[s.Name] = i
	}
	keep := map[int]bool{}
	switch {
	case only != "":
		i, ok := index[only]
		if !ok {
			return fmt.Errorf("--step %q: no such step (steps: %s)", only, names(all))
		}
		keep[i] = true
	default:
		i, ok := index[from]
		if !ok {
			return fmt.Errorf("--from %q: no such step (steps: %s)", from, names(all))
		}
		before := map[int]bool{}
		var walk func(int)
		walk = func(j int) {
			for _, d := range all[j].DependsOn {
				if !before[index[d]] {
					before[index[d]] = true
					walk(index[d])
				}
			}
		}
		walk(i)
		for j := range all {
			keep[j] = !before[j]
		}
	}
	for i := range run.Status.Steps {
		if !keep[i] {
			s := &run.Status.Steps[i]
			s.Phase, s.Reason, s.Message = v1alpha1.StepSkipped, v1alpha1.ReasonWhenFalse, "skipped: not selected (--step/--from)"
		}
	}
	return nil
}

func names(all []pipeline.Step) string {
	var out []string
	for _, s := range all {
		out = append(out, fmt.Sprintf("%q", s.Name))
	}
	return strings.Join(out, ", ")
}
