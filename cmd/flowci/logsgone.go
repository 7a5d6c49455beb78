package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/archive/api"
	"github.com/flow-ci/flow-ci/internal/archive/runrecord"
	"github.com/flow-ci/flow-ci/internal/podlogs"
)

// archiveRecheck is how often a follower asks the archive about a running step whose
// pod has not started: its pods may be gone (deleted, evicted) while it runs.
const archiveRecheck = 10 * time.Second

// archiveRead is the archive's logs of the run as a follower last read them.
type archiveRead struct {
	logs *archivedLogs
	err  error
	pass int
	at   time.Time
}

// podStream is the archive's name of the log of step i's pod.
func podStream(i int, pod *corev1.Pod) string {
	return runrecord.StreamName(v1alpha1.ComponentStep, i, pod.Name)
}

// archiveLogs is what the archive holds of run's logs. It is read again when fresh is
// asked and it was not read in this pass, or when it is older than archiveRecheck.
func (f *follower) archiveLogs(ctx context.Context, run *v1alpha1.PipelineRun, fresh bool) (*archivedLogs, error) {
	r := &f.archive
	if !r.at.IsZero() && !(fresh && r.pass != f.passes) && time.Since(r.at) < archiveRecheck {
		return r.logs, r.err
	}
	r.pass, r.at = f.passes, time.Now()
	c, err := f.k.archive.client(ctx)
	if err == nil {
		r.logs, r.err = readArchivedLogs(ctx, c, run.Namespace, run.Name, string(run.UID))
	} else {
		r.logs, r.err = nil, err
	}
	return r.logs, r.err
}

// note says once why steps whose pods are gone show only the tail kept in status.
func (f *follower) note(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.noted || f.notes == nil {
		return
	}
	f.noted = true
	if errors.Is(err, errArchiveNotConfigured) {
		fmt.Fprintln(f.notes, "note: steps whose pods are gone show only the log tail kept in the run's status; "+
			"the run archive keeps their whole logs: give its address with --archive-url (or FLOWCI_ARCHIVE_URL)")
		return
	}
	fmt.Fprintf(f.notes, "note: steps whose pods are gone show only the log tail kept in the run's status: %v\n", err)
}

// gone shows step i, which ended (or its run did) and whose pods are gone: the
// attempts of it the archive holds that were not shown yet, whole; when the archive
// has none and nothing of the step was shown, the log tail kept in status, as without
// the archive.
func (f *follower) gone(ctx context.Context, run *v1alpha1.PipelineRun, i int, prefix string) {
	s := run.Status.Steps[i]
	a, err := f.archiveLogs(ctx, run, true)
	if err != nil {
		f.note(err)
	}
	var todo []api.Stream
	if a != nil {
		todo = f.unprinted(a.attempts[i])
	}
	switch {
	case len(todo) > 0:
		f.scr.header(s.Name, fmt.Sprintf("%s (its pods are gone; its log from the run archive follows)", s.Phase))
		f.showAttempts(ctx, a, i, s.Name, todo, prefix)
	case f.printedOf(i) > 0:
		// Every attempt of it was shown, from its pods or the archive.
	default:
		f.scr.header(s.Name, fmt.Sprintf("%s (its pods are gone; the log tail kept in the run's status follows)", s.Phase))
		for _, line := range splitLines(s.Message) {
			f.scr.prefixed(prefix, line)
		}
	}
}

// runningFromArchive shows what the archive holds of step i, which runs but has no
// pod whose log can be read, when that was not shown yet: its pods were deleted or
// evicted while it ran. Following, the logs are followed as they are stored. It says
// whether it showed anything; the step is not done with: another pod of it may follow.
func (f *follower) runningFromArchive(ctx context.Context, run *v1alpha1.PipelineRun, i int, prefix string) bool {
	a, err := f.archiveLogs(ctx, run, false)
	if err != nil || a == nil {
		return false // a step waiting for its pod is the common case: no note
	}
	todo := f.unprinted(a.attempts[i])
	if len(todo) == 0 {
		return false
	}
	s := run.Status.Steps[i]
	f.scr.header(s.Name, fmt.Sprintf("%s (its pods are gone; its log from the run archive follows)", s.Phase))
	f.showAttempts(ctx, a, i, s.Name, todo, prefix)
	return true
}

// showAttempts shows the given archived attempts of step i, each after the first under
// a header of its own, on the step's goroutine: followed when the follower follows and
// the archive is still storing them, else as stored now.
func (f *follower) showAttempts(ctx context.Context, a *archivedLogs, i int, step string, todo []api.Stream, prefix string) {
	all := a.attempts[i]
	for _, st := range todo {
		f.markPrinted(st.Name)
	}
	f.background(i, func() {
		for n, st := range todo {
			if n > 0 {
				f.scr.header(step, fmt.Sprintf("attempt %d of %d (from the run archive)", attemptNumber(all, st.Name), len(all)))
			}
			var err error
			if f.follow && !st.Done {
				err = a.follow(ctx, f.scr, prefix, st.Name, 0)
			} else {
				err = a.print(ctx, f.scr, prefix, st)
			}
			if err != nil && ctx.Err() == nil {
				f.scr.prefixed(prefix, fmt.Sprintf("(cannot read log %s from the run archive: %v)", st.Name, err))
			}
		}
	})
}

func attemptNumber(all []api.Stream, name string) int {
	for n, st := range all {
		if st.Name == name {
			return n + 1
		}
	}
	return 0
}

// podWentAway says whether pod is gone, or is being deleted while its step container
// runs: its log stream then ended before the container's output did.
func (f *follower) podWentAway(ctx context.Context, pod *corev1.Pod) bool {
	p, err := f.k.kube.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return true
	case err != nil:
		return false
	case p.UID != pod.UID:
		return true // another pod took its name
	case p.DeletionTimestamp == nil:
		return false
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == podlogs.StepContainer && cs.State.Terminated != nil {
			return false // it ended, and its stream carried its log to the end
		}
	}
	return true
}

// restFromArchive follows the rest of stream, a log whose first shown lines came from
// its pod before the pod went away, in the archive.
func (f *follower) restFromArchive(ctx context.Context, run *v1alpha1.PipelineRun, step, stream string, shown int, prefix string) {
	c, err := f.k.archive.client(ctx)
	if err != nil {
		f.note(err)
		return
	}
	a := &archivedLogs{c: c, ns: run.Namespace, name: run.Name, uid: string(run.UID)}
	f.scr.header(step, "its pod went away; the rest of its log from the run archive follows")
	if err := a.follow(ctx, f.scr, prefix, stream, shown); err != nil && ctx.Err() == nil {
		f.scr.prefixed(prefix, fmt.Sprintf("(cannot read log %s from the run archive: %v)", stream, err))
	}
}

func (f *follower) isPrinted(stream string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.printed[stream]
}

func (f *follower) markPrinted(stream string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.printed[stream] = true
}

// unprinted are the streams of list not shown yet.
func (f *follower) unprinted(list []api.Stream) []api.Stream {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []api.Stream
	for _, st := range list {
		if !f.printed[st.Name] {
			out = append(out, st)
		}
	}
	return out
}

// printedOf counts the shown logs of step i.
func (f *follower) printedOf(i int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for name := range f.printed {
		if runrecord.StepOf(name) == i {
			n++
		}
	}
	return n
}

// reopen asks the next pass to look at step i again.
func (f *follower) reopen(i int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reopened[i] = true
}

func (f *follower) anyReopened() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reopened) > 0
}

// takeReopened makes the reopened steps not handled, for this pass.
func (f *follower) takeReopened() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.reopened {
		delete(f.handled, i)
	}
	clear(f.reopened)
}
