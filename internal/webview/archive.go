package webview

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/flow-ci/flow-ci/internal/archive/runrecord"
	"github.com/flow-ci/flow-ci/internal/podlogs"
	"github.com/flow-ci/flow-ci/internal/render"
	"github.com/flow-ci/flow-ci/internal/shorten"
)

// Archive is the run archive as the web view reads it: runs kept after they ended,
// also once they are deleted from the cluster, and their whole logs. cmd/flowci builds
// it with internal/archive/client. Every call carries the reader's bearer token (in a
// cluster; "" on a laptop, where the archive is read with the user's own credentials),
// so the archive authorizes each read for the reader, never for the web view. Errors
// are ErrForbidden for a refusal and archive.ErrNotFound for what it does not hold.
type Archive interface {
	// List reads one page of the archived runs of namespace, newest first; next, when
	// not empty, is the ArchiveQuery.After of the page after it.
	List(ctx context.Context, token, namespace string, q ArchiveQuery) (runs []ArchivedRun, next string, err error)
	// Run reads the newest archived run of that name, or the one with uid: then also
	// a run that has no record yet (it runs), with the logs stored so far.
	Run(ctx context.Context, token, namespace, name, uid string) (ArchivedRun, error)
	// Log writes stream of the run with uid to w, exactly as stored.
	Log(ctx context.Context, token, namespace, name, uid, stream string, w io.Writer) error
}

// ArchiveQuery selects archived runs; empty fields match every run.
type ArchiveQuery struct {
	RepoURL, Branch, Phase string
	// After is the next of the previous page; Limit the page's size (0: the archive's).
	After string
	Limit int
}

// ArchivedRun is a run as the archive keeps it.
type ArchivedRun struct {
	UID, Namespace, Name           string
	RepoURL, Branch, Commit, Phase string
	Created, Finished              time.Time
	// Record is the archive's record of the run (runrecord.Document as JSON); empty
	// while the run has no record yet.
	Record []byte
	Logs   []ArchivedLog
}

// ArchivedLog is one stored log: a clone's or one pod of a step.
type ArchivedLog struct {
	// Stream is its name: "clone-<pod suffix>" or "step-<index>-<pod suffix>".
	Stream string
	Bytes  int64
	Done   bool
	// Missing says which part of it the archive could not store.
	Missing string
	// Last is the time of its last line: a step's pods ran in that order.
	Last time.Time
}

// archivedPage is the number of archived runs a page of the runs list shows.
const archivedPage = 50

// readerArchive is the archive as one request's reader reads it.
type readerArchive struct {
	a     Archive
	token string
}

// archiveFor is the archive as the request's reader reads it, nil without one. In a
// cluster the reader's own token goes with each read (the web view never reads the
// archive as itself); on a laptop none does: the user's credentials are the Archive's.
func (s *Server) archiveFor(r *http.Request) *readerArchive {
	if s.opts.Archive == nil {
		return nil
	}
	ra := &readerArchive{a: s.opts.Archive}
	if s.opts.Access != nil {
		ra.token = tokenOf(r)
	}
	return ra
}

// archiveFailed is an error of the archive, for its page's title.
type archiveFailed struct{ err error }

func (e archiveFailed) Error() string { return "the run archive: " + e.err.Error() }
func (e archiveFailed) Unwrap() error { return e.err }

func (ra *readerArchive) run(ctx context.Context, ns, name, uid string) (ArchivedRun, error) {
	run, err := ra.a.Run(ctx, ra.token, ns, name, uid)
	if err != nil {
		return ArchivedRun{}, archiveFailed{err}
	}
	return run, nil
}

// logs are the run's stored logs; none for a nil run.
func (run *ArchivedRun) logs() []ArchivedLog {
	if run == nil {
		return nil
	}
	return run.Logs
}

// archivedList is the archived part of the runs list.
type archivedList struct {
	Rows []runRow
	// Next is the address of the list's next page, if there is one: built from
	// url.Values.Encode, so it is already escaped and the template takes it as is.
	Next template.URL
	// Note says why no archived runs are shown, or why some may be missing.
	Note string
}

// archivedRows reads a page of the archived runs of ns that match the filters, leaving
// out those the cluster still holds (live, by UID): they are listed as they are now.
func (ra *readerArchive) archivedRows(r *http.Request, ns string, q ArchiveQuery, live map[string]bool) archivedList {
	if ns == "" {
		return archivedList{Note: "Archived runs are listed by namespace: choose one above."}
	}
	q.Limit = archivedPage
	runs, next, err := ra.a.List(r.Context(), ra.token, ns, q)
	if err != nil {
		return archivedList{Note: archiveFailed{err}.Error()}
	}
	var out archivedList
	for _, run := range runs {
		if live[run.UID] {
			continue
		}
		out.Rows = append(out.Rows, runRow{Namespace: run.Namespace, Name: run.Name, UID: run.UID,
			Link: archivedLink(run.Namespace, run.Name, run.UID), Repo: render.NormalizeRepoURL(run.RepoURL),
			Branch: run.Branch, Commit: shorten.SHA(run.Commit), Phase: orNone(run.Phase), Created: run.Created})
	}
	if next != "" {
		v := r.URL.Query()
		v.Set("after", next)
		v.Del("fragment")
		out.Next = template.URL("/runs?" + v.Encode())
	}
	return out
}

// archivedLink is the page of an archived run: by its UID, since a name may be reused.
func archivedLink(ns, name, uid string) string {
	return fmt.Sprintf("/runs/%s/%s?uid=%s", ns, name, uid)
}

// attemptsOf are the logs of one step (cloneStep: the clone's), in the order its pods
// ran.
func attemptsOf(logs []ArchivedLog, step int) []ArchivedLog {
	var out []ArchivedLog
	for _, l := range logs {
		if runrecord.StepOf(l.Stream) == step && (step >= 0 || strings.HasPrefix(l.Stream, "clone-")) {
			out = append(out, l)
		}
	}
	sort.SliceStable(out, func(a, b int) bool {
		return runrecord.ReadingOrder(out[a].Stream, out[a].Last, out[b].Stream, out[b].Last)
	})
	return out
}

// cloneStep is the step index of the clone's logs (runrecord.StepOf).
const cloneStep = -1

// archivedNote is what a log pane says of the logs the archive holds of its step.
func archivedNote(attempts []ArchivedLog) logNote {
	var missing []string
	for _, l := range attempts {
		if l.Missing != "" {
			missing = append(missing, l.Missing)
		}
	}
	return logNote{From: "archive", Missing: strings.Join(missing, "; ")}
}

// sendArchived sends the lines of attempts after line from, numbered across them
// all: each attempt after the first under a line that says so, each with what the
// archive could not store of it after its lines. It says whether the sink took them
// all; when it does not (the reader went away), the download stops.
func (ra *readerArchive) sendArchived(ctx context.Context, run ArchivedRun, attempts []ArchivedLog, from int, sink logSink) bool {
	n := 0
	send := func(text string) bool {
		n++
		return n <= from || sink.line(n, text) == nil
	}
	for k, l := range attempts {
		if k > 0 && !send(fmt.Sprintf("── attempt %d of %d ──", k+1, len(attempts))) {
			return false
		}
		pr, pw := io.Pipe()
		go func() { _ = pw.CloseWithError(ra.a.Log(ctx, ra.token, run.Namespace, run.Name, run.UID, l.Stream, pw)) }()
		ok := true
		_, err := podlogs.ScanLines(pr, 0, func(_ int, text string) {
			if ok && !send(text) {
				ok = false
				_ = pr.CloseWithError(errReaderGone) // the download's next write fails: it stops
			}
		})
		_ = pr.Close()
		switch {
		case !ok:
			return false
		case err != nil && !send(fmt.Sprintf("(cannot read log %s from the run archive: %v)", l.Stream, err)):
			return false
		case l.Missing != "" && !send("(the run archive could not store all of this log: "+l.Missing+")"):
			return false
		}
	}
	return true
}

var errReaderGone = errors.New("the reader went away")
