package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
exits with the run's result (the failed step's exit code).

A step whose pods are gone is shown from the run archive, whole (every attempt, in
order), and says so; without the archive (--archive-url), from the log tail kept in the
run's status. A run gone from the cluster is found in the archive by its name: its
clone's and steps' logs follow in graph order. With -f, a step whose pods were deleted
while it ran is followed in the archive.`,
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
				if apierrors.IsNotFound(err) {
					return logsOfArchivedRun(cmd.Context(), k, streams, args[0], follow, err)
				}
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
			end, err := followLogs(cmd.Context(), k, newScreen(streams.Out), run.Name, followOptions{follow: follow, notes: streams.ErrOut})
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

// followOptions say how followLogs shows a run.
type followOptions struct {
	// follow: until the run ends, picking up steps as they start.
	follow bool
	// progress: a live line of the run's state on a terminal.
	progress bool
	// notes receives what is said about the output rather than shown in it (stderr).
	notes io.Writer
}

// followLogs prints the run's step logs in index order (the graph's order) and returns
// the run as last read. Without follow it prints what exists now.
func followLogs(ctx context.Context, k *clients, scr *screen, name string, o followOptions) (*v1alpha1.PipelineRun, error) {
	since := time.Now()
	f := &follower{k: k, scr: scr, follow: o.follow, notes: o.notes, handled: map[int]bool{}, streaming: map[int]bool{},
		printed: map[string]bool{}, reopened: map[int]bool{}}
	for {
		run, err := k.getRun(ctx, name)
		if err != nil {
			return nil, err
		}
		if o.progress {
			scr.setProgress(run, since)
		}
		pods, err := k.logs.StepPods(ctx, run)
		if err != nil {
			return nil, err
		}
		f.passes++
		f.pass(ctx, run, pods)
		if !o.follow || (run.Status.Phase.IsFinished() && len(f.handled) == len(run.Status.Steps)) {
			f.wg.Wait()
			if f.anyReopened() {
				continue // a step's pod went away while it streamed: show the rest of it
			}
			if o.follow {
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
// shown (handled), those whose logs stream now, and which pods' logs (by their
// archive stream name) it has shown, from the pod or from the archive.
type follower struct {
	k       *clients
	scr     *screen
	follow  bool
	notes   io.Writer
	handled map[int]bool
	passes  int
	archive archiveRead // the archive's logs of the run, as last read

	wg sync.WaitGroup
	// mu guards what the steps' goroutines share with the passes.
	mu        sync.Mutex
	streaming map[int]bool
	printed   map[string]bool
	reopened  map[int]bool // steps to look at again: their pod went away mid-stream
	noted     bool         // a note about the archive was given
}

// pass shows what it can of the run's steps now: in order, one at a time when steps
// run one after the other, side by side (lines prefixed) when they may overlap.
func (f *follower) pass(ctx context.Context, run *v1alpha1.PipelineRun, pods map[int]*corev1.Pod) {
	f.takeReopened()
	prefix := overlapping(run.Status.Steps)
	for i, s := range run.Status.Steps {
		if f.handled[i] {
			continue
		}
		pod := pods[i]
		live := podlogs.Started(pod) && !f.isPrinted(podStream(i, pod))
		waiting := s.Phase == v1alpha1.StepPending ||
			(!live && s.Phase != v1alpha1.StepSkipped && !runstate.IsTerminal(s.Phase) && !run.Status.Phase.IsFinished())
		switch {
		case !prefix && f.busy():
			return // one step at a time, in order
		case waiting && s.Phase == v1alpha1.StepRunning && f.runningFromArchive(ctx, run, i, prefixFor(prefix, s.Name)):
			if !prefix {
				return // its pods are gone while it runs: the archive's copy shows, and its next pod may follow
			}
			continue
		case waiting && prefix:
			continue
		case waiting:
			return // its pod is not running yet
		case s.Phase == v1alpha1.StepSkipped:
			f.scr.header(s.Name, fmt.Sprintf("%s (%s)", s.Phase, s.Message))
		case !live:
			f.gone(ctx, run, i, prefixFor(prefix, s.Name))
		default:
			f.scr.header(s.Name, "started")
			f.stream(ctx, run, i, pod, prefixFor(prefix, s.Name), f.follow && !runstate.IsTerminal(s.Phase))
		}
		f.handled[i] = true
	}
}

func (f *follower) busy() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.streaming) > 0
}

// background runs show for step i on its own goroutine, the step counting as
// streaming until it returns; without follow it waits for it, so steps show in order.
func (f *follower) background(i int, show func()) {
	f.mu.Lock()
	f.streaming[i] = true
	f.mu.Unlock()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		show()
		f.mu.Lock()
		delete(f.streaming, i)
		f.mu.Unlock()
	}()
	if !f.follow {
		f.wg.Wait() // in order, one after the other
	}
}

// stream copies step i's log from pod. When the pod goes away while its log streams
// (deleted, evicted), the rest of it comes from the archive, and the step is looked at
// again: another pod of it may follow.
func (f *follower) stream(ctx context.Context, run *v1alpha1.PipelineRun, i int, pod *corev1.Pod, prefix string, follow bool) {
	name := podStream(i, pod)
	f.markPrinted(name)
	f.background(i, func() {
		n := streamPod(ctx, f.k, f.scr, pod, prefix, follow)
		if follow && ctx.Err() == nil && f.podWentAway(ctx, pod) {
			f.restFromArchive(ctx, run, run.Status.Steps[i].Name, name, n, prefix)
			f.reopen(i)
		}
	})
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

// streamPod copies the pod's log, line by line, to the screen, and returns the number
// of the last line it copied.
func streamPod(ctx context.Context, k *clients, scr *screen, pod *corev1.Pod, prefix string, follow bool) int {
	n, err := k.logs.Stream(ctx, pod, 0, follow, func(_ int, text string) { scr.prefixed(prefix, text) })
	if err != nil && ctx.Err() == nil {
		scr.prefixed(prefix, fmt.Sprintf("(cannot read the log of pod %s: %v)", pod.Name, err))
	}
	return n
}

func splitLines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}
