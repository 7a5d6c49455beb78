package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/archive"
	"github.com/flow-ci/flow-ci/internal/archive/api"
	archiveclient "github.com/flow-ci/flow-ci/internal/archive/client"
	"github.com/flow-ci/flow-ci/internal/archive/runrecord"
)

// archiveIdle bounds how long a follower waits for an archived log that does not grow
// and is not done: the pod it comes from is gone, so the archive ends it within
// seconds unless it is down.
const archiveIdle = 30 * time.Second

// cloneStep is the step index of the clone's logs (runrecord.StepOf).
const cloneStep = -1

// archivedLogs is what the archive holds of one run's logs, read by the run's UID.
type archivedLogs struct {
	c             *archiveclient.Client
	ns, name, uid string
	// attempts are each step's logs (cloneStep: the clone's), in the order they ran.
	attempts map[int][]api.Stream
}

// readArchivedLogs reads which logs the archive holds of the run with this UID: also
// a run that has no record yet, while it runs.
func readArchivedLogs(ctx context.Context, c *archiveclient.Client, ns, name, uid string) (*archivedLogs, error) {
	run, err := c.GetUID(ctx, ns, name, uid)
	if errors.Is(err, archive.ErrNotFound) {
		return &archivedLogs{c: c, ns: ns, name: name, uid: uid, attempts: map[int][]api.Stream{}}, nil
	}
	if err != nil {
		return nil, err
	}
	return &archivedLogs{c: c, ns: ns, name: name, uid: uid, attempts: attemptsByStep(run.Streams)}, nil
}

// attemptsByStep groups a run's logs by step (cloneStep for the clone's), each
// step's in the order its pods ran (runrecord.ReadingOrder). A stream whose name is
// neither a clone's nor a step's is left out.
func attemptsByStep(streams []api.Stream) map[int][]api.Stream {
	out := map[int][]api.Stream{}
	for _, s := range streams {
		i := runrecord.StepOf(s.Name)
		if i < 0 && !isCloneStream(s.Name) {
			continue
		}
		out[i] = append(out[i], s)
	}
	for _, list := range out {
		sort.SliceStable(list, func(a, b int) bool {
			return runrecord.ReadingOrder(list[a].Name, list[a].Last, list[b].Name, list[b].Last)
		})
	}
	return out
}

func isCloneStream(name string) bool { return strings.HasPrefix(name, "clone-") }

// print writes one stored log onto the screen under prefix as it is stored now, then
// what the archive could not store of it.
func (a *archivedLogs) print(ctx context.Context, scr *screen, prefix string, st api.Stream) error {
	w, end := scr.logWriter(prefix)
	_, err := a.c.LogUID(ctx, a.ns, a.name, a.uid, st.Name, w)
	end()
	if err != nil {
		return err
	}
	if st.Missing != "" {
		scr.prefixed(prefix, "(the run archive could not store all of this log: "+st.Missing+")")
	}
	return nil
}

// follow writes stream onto the screen as the archive stores it, after its first
// skip lines (those a pod's stream already showed): it polls with the offset it has
// read to until the archive says the log is done, or it has not grown for archiveIdle.
func (a *archivedLogs) follow(ctx context.Context, scr *screen, prefix, stream string, skip int) error {
	w, end := scr.logWriter(prefix)
	out := &countingWriter{w: &skipLines{w: w, left: skip}}
	grew := time.Now()
	for {
		before := out.n
		info, err := a.c.LogFrom(ctx, a.ns, a.name, a.uid, stream, out.n, out)
		if out.n > before {
			grew = time.Now()
		}
		var refused *archiveclient.Error
		switch {
		case err == nil && info.Done:
			end()
			if info.Missing != "" {
				scr.prefixed(prefix, "(the run archive could not store all of this log: "+info.Missing+")")
			}
			return nil
		case errors.As(err, &refused) && refused.Status < 500 && refused.Status != 404:
			end()
			return err // a refusal does not change by asking again
		case time.Since(grew) >= archiveIdle:
			end()
			return fmt.Errorf("the run archive has stored nothing more of log %s for %s, and has not marked it complete", stream, archiveIdle)
		}
		// Not stored yet (404), not done yet, or a failure that may pass: ask again.
		select {
		case <-ctx.Done():
			end()
			return ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

// countingWriter counts what it passed on, so that a follower's next offset is what
// it has written, even after a download that broke halfway.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// skipLines drops its first left lines and passes on the rest.
type skipLines struct {
	w    io.Writer
	left int
}

func (s *skipLines) Write(p []byte) (int, error) {
	all := len(p)
	for s.left > 0 && len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			return all, nil
		}
		p, s.left = p[i+1:], s.left-1
	}
	if len(p) == 0 {
		return all, nil
	}
	if _, err := s.w.Write(p); err != nil {
		return 0, err
	}
	return all, nil
}

// logsOfArchivedRun is `flowci logs RUN` for a run gone from the cluster (notFound
// says so): the newest run of that name in the archive, every stored log of it in
// graph order, with the headers and prefixes of a live run's. Without the archive it
// is notFound, with a note on how to configure the archive.
func logsOfArchivedRun(ctx context.Context, k *clients, streams genericclioptions.IOStreams, name string, follow bool, notFound error) error {
	run, a, err := archivedRun(ctx, k, name)
	if errors.Is(err, errArchiveNotConfigured) {
		fmt.Fprintf(streams.ErrOut, "note: the run archive keeps runs after they are deleted: give its address with --archive-url (or FLOWCI_ARCHIVE_URL)\n")
		return notFound
	}
	if err != nil {
		return fmt.Errorf("%w; the run archive: %w", notFound, err)
	}
	fmt.Fprintf(streams.ErrOut, "run %s/%s is gone from the cluster: its logs come from the run archive\n", run.Namespace, run.Name)
	printArchivedRun(ctx, newScreen(streams.Out), run, a)
	if follow {
		return runResult(run)
	}
	return nil
}

// archivedRun reads the newest run named name in the namespace from the archive: the
// run as its record keeps it, and its logs.
func archivedRun(ctx context.Context, k *clients, name string) (*v1alpha1.PipelineRun, *archivedLogs, error) {
	c, err := k.archive.client(ctx)
	if err != nil {
		return nil, nil, err
	}
	got, err := c.Get(ctx, k.namespace, name)
	if err != nil {
		return nil, nil, err
	}
	doc, err := runrecord.Decode(got.Record)
	if err != nil {
		return nil, nil, err
	}
	a := &archivedLogs{c: c, ns: got.Namespace, name: got.Name, uid: got.UID, attempts: attemptsByStep(got.Streams)}
	return doc.PipelineRun(), a, nil
}

// printArchivedRun prints every stored log of run in graph order: the clone's, then
// each step's (every attempt, in order), prefixed as followLogs prefixes them. A step
// the archive has no log of shows the tail kept in its status, as followLogs does.
func printArchivedRun(ctx context.Context, scr *screen, run *v1alpha1.PipelineRun, a *archivedLogs) {
	prefix := overlapping(run.Status.Steps)
	show := func(step string, i int) {
		for n, st := range a.attempts[i] {
			if n > 0 {
				scr.header(step, fmt.Sprintf("attempt %d of %d (from the run archive)", n+1, len(a.attempts[i])))
			}
			if err := a.print(ctx, scr, prefixFor(prefix, step), st); err != nil {
				scr.prefixed(prefixFor(prefix, step), fmt.Sprintf("(cannot read log %s from the run archive: %v)", st.Name, err))
			}
		}
	}
	if len(a.attempts[cloneStep]) > 0 {
		scr.header("clone", "(from the run archive)")
		show("clone", cloneStep)
	}
	for i, s := range run.Status.Steps {
		switch {
		case s.Phase == v1alpha1.StepPending:
			// It never ran.
		case s.Phase == v1alpha1.StepSkipped:
			scr.header(s.Name, fmt.Sprintf("%s (%s)", s.Phase, s.Message))
		case len(a.attempts[i]) > 0:
			scr.header(s.Name, fmt.Sprintf("%s (from the run archive)", s.Phase))
			show(s.Name, i)
		default:
			scr.header(s.Name, fmt.Sprintf("%s (the run archive has no log of it; the log tail kept in the run's status follows)", s.Phase))
			for _, line := range splitLines(s.Message) {
				scr.prefixed(prefixFor(prefix, s.Name), line)
			}
		}
	}
}
