package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/flow-ci/flow-ci/internal/archive/api"
	archiveclient "github.com/flow-ci/flow-ci/internal/archive/client"
	"github.com/flow-ci/flow-ci/internal/archive/runrecord"
)

// archivedListFlags are list's filters of archived runs.
type archivedListFlags struct {
	archived                          bool
	repo, commit, phase, since, until string
	limit                             int
}

// filtered says which filter that needs --archived was given, if any.
func (a archivedListFlags) filtered() string {
	for _, f := range []struct{ flag, v string }{
		{"--repo", a.repo}, {"--commit", a.commit}, {"--phase", a.phase}, {"--since", a.since}, {"--until", a.until},
	} {
		if f.v != "" {
			return f.flag
		}
	}
	return ""
}

// listArchived is `flowci list --archived`: the namespace's archived runs, newest
// first, filtered by the archive, up to limit of them (read page by page).
func listArchived(ctx context.Context, k *clients, streams genericclioptions.IOStreams, a archivedListFlags, branch, output string) error {
	c, err := k.archive.client(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	f := archiveclient.Filter{RepoURL: a.repo, Branch: branch, Commit: a.commit, Phase: a.phase}
	if f.Since, err = parseWhen("--since", a.since, now); err != nil {
		return err
	}
	if f.Until, err = parseWhen("--until", a.until, now); err != nil {
		return err
	}
	if a.limit < 1 {
		return fmt.Errorf("--limit must be at least 1")
	}
	runs, more, err := listArchivedRuns(ctx, c, k.namespace, f, a.limit, api.MaxLimit)
	if err != nil {
		return err
	}
	if more {
		fmt.Fprintf(streams.ErrOut, "note: more archived runs match: raise --limit (%d) or narrow --since and --until\n", a.limit)
	}
	if done, err := printObject(streams.Out, output, runs); done {
		return err
	}
	scr := newScreen(streams.Out)
	tw := tabwriter.NewWriter(streams.Out, 0, 4, 3, ' ', 0)
	head := "NAME\tPHASE\tCOMMIT\tBRANCH\tCREATED\tFINISHED"
	if output == "wide" {
		head += "\tREPO\tUID"
	}
	fmt.Fprintln(tw, head)
	for _, r := range runs {
		row := []string{r.Name, scr.paint(phaseColour(r.Phase), orNone(r.Phase)), orNone(shortSHA(r.Commit)), orNone(r.Branch),
			age(metav1.NewTime(r.Created)), age(metav1.NewTime(r.Finished))}
		if output == "wide" {
			row = append(row, r.RepoURL, r.UID)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// listArchivedRuns reads pages of f's runs in ns, of at most page runs each, until it
// has limit of them or read the last page; more says that more runs match.
func listArchivedRuns(ctx context.Context, c *archiveclient.Client, ns string, f archiveclient.Filter, limit, page int) (runs []api.Summary, more bool, err error) {
	for len(runs) < limit {
		f.Limit = min(limit-len(runs), page)
		items, next, err := c.List(ctx, ns, f)
		if err != nil {
			return nil, false, err
		}
		runs = append(runs, items...)
		if next == "" {
			return runs, false, nil
		}
		f.After = next
	}
	return runs, true, nil
}

func shortSHA(sha string) string { return sha[:min(len(sha), 7)] }

// parseWhen reads a time flag: an RFC 3339 time, or a duration before now (90m, 36h,
// 7d).
func parseWhen(flag, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		n, err = strconv.Atoi(days)
		d = time.Duration(n) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 {
		return time.Time{}, fmt.Errorf("%s %q is neither an RFC 3339 time (2026-03-01T12:00:00Z) nor a time ago (90m, 36h, 7d)", flag, s)
	}
	return now.Add(-d), nil
}

// describeArchived is `flowci describe RUN` of a run the archive keeps: the newest run
// of that name there. notFound is the cluster's answer, when it was asked.
func describeArchived(ctx context.Context, k *clients, streams genericclioptions.IOStreams, name, output string, notFound error) error {
	c, err := k.archive.client(ctx)
	if err != nil {
		if notFound != nil && errors.Is(err, errArchiveNotConfigured) {
			fmt.Fprintf(streams.ErrOut, "note: the run archive keeps runs after they are deleted: give its address with --archive-url (or FLOWCI_ARCHIVE_URL)\n")
			return notFound
		}
		return err
	}
	got, err := c.Get(ctx, k.namespace, name)
	if err != nil {
		if notFound != nil {
			return fmt.Errorf("%w; the run archive: %w", notFound, err)
		}
		return err
	}
	doc, err := runrecord.Decode(got.Record)
	if err != nil {
		return err
	}
	if done, err := printObject(streams.Out, output, doc); done {
		return err
	}
	if notFound != nil {
		fmt.Fprintf(streams.ErrOut, "run %s/%s is gone from the cluster: its record comes from the run archive\n", got.Namespace, got.Name)
	}
	describeRecord(newScreen(streams.Out), doc, got.Streams)
	return nil
}

// describeRecord prints an archived run as describe prints a live one, then what only
// the record holds: its times, its logs, what the archive could not keep, its events
// and the pipeline file that ran.
func describeRecord(scr *screen, doc runrecord.Document, streams []api.Stream) {
	run := doc.PipelineRun()
	describe(scr, run)
	scr.line(fmt.Sprintf("Created:    %s", stamp(run.CreationTimestamp.Time)))
	if t := run.Status.CompletionTime; t != nil {
		scr.line(fmt.Sprintf("Finished:   %s", stamp(t.Time)))
	}
	scr.line(fmt.Sprintf("Archived:   %s (UID %s)", stamp(doc.ArchivedAt), run.UID))
	scr.line("Logs:")
	attempts := attemptsByStep(streams)
	steps := slices.Sorted(maps.Keys(attempts)) // the clone's first, then by step
	streams = nil
	for _, i := range steps {
		streams = append(streams, attempts[i]...)
	}
	for _, st := range streams {
		cut := ""
		if st.Cut {
			cut = "  (cut at the archive's size limit)"
		}
		scr.line(fmt.Sprintf("  %s  %d bytes%s", st.Name, st.Bytes, cut))
	}
	if len(streams) == 0 {
		scr.line("  <none>")
	}
	scr.line("Missing:")
	for _, m := range doc.Missing {
		scr.line("  - " + m)
	}
	if len(doc.Missing) == 0 {
		scr.line("  <none>")
	}
	scr.line("Events:")
	printEvents(scr, doc.Events)
	scr.line("Pipeline file:")
	if doc.PipelineFile == "" {
		scr.line("  <none>")
	}
	for _, l := range splitLines(doc.PipelineFile) {
		scr.line("  " + l)
	}
}

func printEvents(scr *screen, events []runrecord.Event) {
	if len(events) == 0 {
		scr.line("  <none>")
		return
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, e := range events {
		count := ""
		if e.Count > 1 {
			count = fmt.Sprintf(" (x%d)", e.Count)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s%s\n", stamp(e.Last), e.Type, e.Reason, e.Message, count)
	}
	_ = tw.Flush()
	for _, l := range splitLines(b.String()) {
		scr.line(l)
	}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "<none>"
	}
	return t.UTC().Format(time.RFC3339)
}
