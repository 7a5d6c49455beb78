package main

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/podlogs"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

// pollEvery is how often a follower looks at the run and its pods.
const pollEvery = time.Second

func newLogsCmd(kube *kubeFlags, streams genericclioptions.IOStreams) *cobra.Command {
	var follow bool
	c := &cobra.Command{
		Use:   "logs [RUN]",
		Short: "Print every step's log in graph order; -f follows the run to its end",
		Long: `Prints the log of each step of RUN in graph order, each line prefixed with its step
when steps run side by side. Without RUN, the newest run of this working copy's
repository and branch. With -f it follows the run, picking up steps as they start, and
exits with the run's result (the failed step's exit code). A step whose pods are gone is
shown from the log tail kept in the run's status, and says so.`,
		Example: "  flowci logs -f\n  flowci logs build-7xk2p -n ci",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := kube.clients()
			if err != nil {
				return err
			}
			var run *v1alpha1.PipelineRun
			if len(args) == 1 {
				run, err = k.getRun(cmd.Context(), args[0])
			} else {
				wc, werr := workingCopy(".")
				if werr != nil || wc.remote == "" {
					return fmt.Errorf("name a run, or run this in a working copy with an origin remote")
				}
				run, err = k.newestRun(cmd.Context(), wc.remote, wc.branch)
			}
			if err != nil {
				return err
			}
			scr := newScreen(streams.Out)
			end, err := followLogs(cmd.Context(), k, scr, run.Name, follow, false)
			if err != nil || !follow {
				return err
			}
			return runResult(end)
		},
	}
	c.Flags().BoolVarP(&follow, "follow", "f", false, "Follow the run until it ends, and exit with its result.")
	return c
}

// runResult is the exit error of a finished run: nil when it succeeded, else the exit
// code of the step it failed for (1 when none).
func runResult(run *v1alpha1.PipelineRun) error {
	if code := runstate.ExitCode(run); code != 0 {
		return exitError{code: code}
	}
	return nil
}

// overlapping reports whether any step waits for something other than the step before
// it, so that steps may run side by side and their lines need a prefix.
func overlapping(steps []v1alpha1.StepStatus) bool {
	for i, s := range steps {
		if s.Finally {
			continue
		}
		if i == 0 && len(s.DependsOn) > 0 || i > 0 && (len(s.DependsOn) != 1 || s.DependsOn[0] != steps[i-1].Name) {
			return true
		}
	}
	return false
}

// followLogs prints the run's step logs in index order (the graph's order) and returns
// the run as last read. Without follow it prints what exists now. With progress, a live
// line shows the run's state on a terminal.
func followLogs(ctx context.Context, k *clients, scr *screen, name string, follow, progress bool) (*v1alpha1.PipelineRun, error) {
	since := time.Now()
	f := &follower{k: k, scr: scr, follow: follow, handled: map[int]bool{}, streaming: map[int]bool{}}
	for {
		run, err := k.getRun(ctx, name)
		if err != nil {
			return nil, err
		}
		if progress {
			scr.setProgress(run, since)
		}
		pods, err := k.logs.StepPods(ctx, run)
		if err != nil {
			return nil, err
		}
		f.pass(ctx, run, pods)
		if !follow || (run.Status.Phase.IsFinished() && len(f.handled) == len(run.Status.Steps)) {
			f.wg.Wait()
			if follow {
				scr.done()
				scr.header(run.Name, fmt.Sprintf("%s %s", run.Status.Phase, conditionMessage(run)))
			}
			return run, nil
		}
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

// follower is what followLogs knows between its looks at the run: the steps it has
// shown (handled) and those whose logs stream now.
type follower struct {
	k       *clients
	scr     *screen
	follow  bool
	handled map[int]bool

	wg        sync.WaitGroup
	mu        sync.Mutex
	streaming map[int]bool
}

// pass shows what it can of the run's steps now: in order, one at a time when steps
// run one after the other, side by side (lines prefixed) when they may overlap.
func (f *follower) pass(ctx context.Context, run *v1alpha1.PipelineRun, pods map[int]*corev1.Pod) {
	prefix := overlapping(run.Status.Steps)
	for i, s := range run.Status.Steps {
		if f.handled[i] {
			continue
		}
		f.mu.Lock()
		busy := len(f.streaming) > 0
		f.mu.Unlock()
		waiting := s.Phase == v1alpha1.StepPending ||
			(!podlogs.Started(pods[i]) && s.Phase != v1alpha1.StepSkipped && !runstate.IsTerminal(s.Phase) && !run.Status.Phase.IsFinished())
		switch {
		case !prefix && busy:
			return // one step at a time, in order
		case waiting && prefix:
			continue
		case waiting:
			return // its pod is not running yet
		case s.Phase == v1alpha1.StepSkipped:
			f.scr.header(s.Name, fmt.Sprintf("%s (%s)", s.Phase, s.Message))
		case !podlogs.Started(pods[i]):
			f.scr.header(s.Name, fmt.Sprintf("%s (its pods are gone; the log tail kept in the run's status follows)", s.Phase))
			for _, line := range splitLines(s.Message) {
				f.scr.prefixed(prefixFor(prefix, s.Name), line)
			}
		default:
			f.scr.header(s.Name, "started")
			f.stream(ctx, i, pods[i], prefixFor(prefix, s.Name), f.follow && !runstate.IsTerminal(s.Phase))
		}
		f.handled[i] = true
	}
}

// stream copies step i's log from pod, on its own goroutine when following.
func (f *follower) stream(ctx context.Context, i int, pod *corev1.Pod, prefix string, follow bool) {
	f.mu.Lock()
	f.streaming[i] = true
	f.mu.Unlock()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		streamPod(ctx, f.k, f.scr, pod, prefix, follow)
		f.mu.Lock()
		delete(f.streaming, i)
		f.mu.Unlock()
	}()
	if !f.follow {
		f.wg.Wait() // in order, one after the other
	}
}

func prefixFor(prefix bool, step string) string {
	if prefix {
		return step
	}
	return ""
}

func conditionMessage(run *v1alpha1.PipelineRun) string {
	for _, c := range run.Status.Conditions {
		if c.Type == v1alpha1.ConditionSucceeded {
			return "(" + c.Reason + ": " + c.Message + ")"
		}
	}
	return ""
}

// streamPod copies the pod's log, line by line, to the screen.
func streamPod(ctx context.Context, k *clients, scr *screen, pod *corev1.Pod, prefix string, follow bool) {
	if _, err := k.logs.Stream(ctx, pod, 0, follow, func(_ int, text string) { scr.prefixed(prefix, text) }); err != nil && ctx.Err() == nil {
		scr.prefixed(prefix, fmt.Sprintf("(cannot read the log of pod %s: %v)", pod.Name, err))
	}
}

func splitLines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}
