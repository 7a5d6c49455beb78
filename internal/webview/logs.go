package webview

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/podlogs"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

// Deadlines of a live log stream.
const (
	// writeDeadline bounds each write to the browser: a reader that stops reading is
	// dropped rather than holding the stream.
	writeDeadline = 10 * time.Second
	// keepAlive is how often an idle stream sends a comment, which also finds readers
	// that went away.
	keepAlive = 15 * time.Second
)

// logSink receives a step's log: numbered lines, where they come from, and the end.
type logSink interface {
	source(from string) error
	line(n int, text string) error
	keepAlive() error
	end(phase string) error
}

// sseSink writes server-sent events: "line" events carry the line number as their id,
// so a reconnecting EventSource resumes after the last line it got (Last-Event-ID).
type sseSink struct {
	mu *sync.Mutex // lines and keep-alives come from two goroutines
	w  io.Writer
	rc *http.ResponseController
}

func (s sseSink) send(format string, args ...any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.rc.SetWriteDeadline(time.Now().Add(writeDeadline))
	if _, err := fmt.Fprintf(s.w, format, args...); err != nil {
		return err
	}
	return s.rc.Flush()
}

func (s sseSink) source(from string) error { return s.send("event: source\ndata: %s\n\n", from) }

// line sends one log line; a carriage return would end the event's data line early
// (progress bars print them).
func (s sseSink) line(n int, text string) error {
	return s.send("id: %d\nevent: line\ndata: %s\n\n", n, strings.ReplaceAll(text, "\r", ""))
}
func (s sseSink) keepAlive() error       { return s.send(": idle\n\n") }
func (s sseSink) end(phase string) error { return s.send("event: end\ndata: %s\n\n", phase) }

// textSink writes plain text, for readers without JavaScript.
type textSink struct{ w io.Writer }

func (t textSink) source(from string) error {
	var err error
	switch from {
	case "status":
		_, err = fmt.Fprintln(t.w, "(the step's pods are gone: this is the log tail kept in the run's status)")
	case "archive":
		_, err = fmt.Fprintln(t.w, "(from the run archive)")
	}
	return err
}
func (t textSink) line(_ int, text string) error { _, err := fmt.Fprintln(t.w, text); return err }
func (t textSink) keepAlive() error              { return nil }
func (t textSink) end(string) error              { return nil }

var errTooManyStreams = errors.New("too many live logs are open")

// streamLimit bounds the live streams, in all and per user (per client address on a
// laptop).
type streamLimit struct {
	max, perUser int

	mu    sync.Mutex
	total int
	open  map[string]int
}

func (l *streamLimit) take(who string) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.max || l.open[who] >= l.perUser {
		return nil, fmt.Errorf("%w: close some, or wait for their steps to end", errTooManyStreams)
	}
	l.total++
	l.open[who]++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.total--
		if l.open[who]--; l.open[who] == 0 {
			delete(l.open, who)
		}
	}, nil
}

// stepLog serves step i's log: live from its pod while it runs (following, as
// server-sent events), complete once it ended, or, once its pods are gone, whole from
// the archive, else the tail kept in status, labelled as such. A run the cluster no
// longer holds (or ?uid= of another run of its name) is read from the archive.
// ?format=text is plain text; Last-Event-ID or ?from=N resumes after line N. Reading it
// needs what kubectl logs needs: get on pods/log.
func (s *Server) stepLog(w http.ResponseWriter, r *http.Request) {
	run, ra, err := s.logRun(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	idx, err := strconv.Atoi(r.PathValue("step"))
	if err != nil || idx < 0 || idx >= len(run.Status.Steps) {
		s.fail(w, badRequest{fmt.Sprintf("run %s has no step %q (it has %d)", run.Name, r.PathValue("step"), len(run.Status.Steps))})
		return
	}
	sink, release, err := s.openSink(w, r)
	if err != nil {
		s.fail(w, err)
		return
	}
	defer release()
	s.streamStep(r.Context(), run, idx, resumeFrom(r), r.URL.Query().Get("format") != "text", sink, ra)
}

// resumeFrom is the line a log's reader has: Last-Event-ID (an EventSource that
// reconnects), else ?from=N; 0 for none.
func resumeFrom(r *http.Request) int {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("from")
	}
	from, _ := strconv.Atoi(v)
	return max(from, 0)
}

// openSink starts a log's answer: plain text with ?format=text, else server-sent
// events, a stream counted against the reader's bound until release.
func (s *Server) openSink(w http.ResponseWriter, r *http.Request) (logSink, func(), error) {
	if r.URL.Query().Get("format") == "text" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		return textSink{w: w}, func() {}, nil
	}
	release, err := s.streams.take(s.reader(r))
	if err != nil {
		return nil, nil, err
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	sink := sseSink{mu: &sync.Mutex{}, w: w, rc: http.NewResponseController(w)}
	if err := sink.send(": open\n\n"); err != nil { // the headers go now, not with the first line
		release()
		return nil, nil, err
	}
	return sink, release, nil
}

// reader names who holds a stream, for the per-user bound.
func (s *Server) reader(r *http.Request) string {
	if u, ok := userOf(r.Context()); ok {
		return "user:" + u.Name
	}
	host, _, _ := strings.Cut(r.RemoteAddr, ":")
	return "addr:" + host
}

// streamStep sends the step's log: from its pod once its container started, or, once
// the step ended without one, from the archive (ra, when there is one and it holds the
// log), else from status. While the step waits for its pod it watches
// the run and the run's step pods, so it wakes when either changes. A guard sends a
// keep-alive when the stream is quiet and ends it after StreamIdle without a line, or
// when the reader goes away.
func (s *Server) streamStep(ctx context.Context, run *v1alpha1.PipelineRun, idx, from int, follow bool, sink logSink, ra *readerArchive) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var lastLine atomic.Int64
	lastLine.Store(time.Now().UnixNano())
	if follow {
		guarded := make(chan struct{})
		go func() {
			defer close(guarded)
			s.guardStream(ctx, cancel, &lastLine, sink)
		}()
		// The guard may be sending a keep-alive: the response must outlive it, for a
		// write after the handler returned panics the server.
		defer func() { cancel(); <-guarded }()
	}
	var changes <-chan struct{}
	for {
		st := run.Status.Steps[idx]
		pods, _ := s.opts.Logs.StepPods(ctx, run)
		live := follow && !runstate.IsTerminal(st.Phase)
		switch pod := pods[idx]; {
		case podlogs.Started(pod):
			if sink.source("pod") != nil {
				return
			}
			n, _ := s.opts.Logs.Stream(ctx, pod, from, live, func(n int, text string) {
				lastLine.Store(time.Now().UnixNano())
				if sink.line(n, text) != nil {
					cancel()
				}
			})
			if !live || ctx.Err() != nil {
				_ = sink.end(string(st.Phase))
				return
			}
			from = n // the pod's log ended: the step ended, or its pod was replaced
		case runstate.IsTerminal(st.Phase) || run.Status.Phase.IsFinished() || !follow:
			if s.sendFromArchive(ctx, ra, run, idx, from, sink) {
				return
			}
			if sink.source("status") != nil {
				return
			}
			for n, text := range strings.Split(strings.TrimSuffix(st.Message, "\n"), "\n") {
				if n+1 > from && st.Message != "" && sink.line(n+1, text) != nil {
					return
				}
			}
			_ = sink.end(string(st.Phase))
			return
		}
		if changes == nil {
			changes = s.watchStep(ctx, run)
		}
		select {
		case <-ctx.Done():
			return
		case <-changes:
		}
		fresh := &v1alpha1.PipelineRun{}
		if err := s.opts.Client.Get(ctx, client.ObjectKeyFromObject(run), fresh); err != nil {
			return
		}
		run = fresh
	}
}

// guardStream ends a live stream after StreamIdle without a line (the browser
// reconnects, resuming after its last line), and keeps a quiet one alive meanwhile; a
// keep-alive that cannot be written ends it too.
func (s *Server) guardStream(ctx context.Context, cancel context.CancelFunc, lastLine *atomic.Int64, sink logSink) {
	tick := time.NewTicker(min(keepAlive, s.opts.StreamIdle))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if time.Since(time.Unix(0, lastLine.Load())) >= s.opts.StreamIdle || sink.keepAlive() != nil {
			cancel()
			return
		}
	}
}

// watchStep signals on the returned channel when the run or one of its step pods
// changes, until ctx ends: watches, not polling, so a waiting reader costs the API
// server nothing until something happens.
func (s *Server) watchStep(ctx context.Context, run *v1alpha1.PipelineRun) <-chan struct{} {
	out := make(chan struct{}, 1)
	signal := func() {
		select {
		case out <- struct{}{}:
		default:
		}
	}
	follow := func(open func() (watch.Interface, error)) {
		for ctx.Err() == nil {
			wi, err := open()
			if err != nil {
				select {
				case <-ctx.Done():
				case <-time.After(keepAlive): // the API server refused: try again later
				}
				continue
			}
			for range wi.ResultChan() {
				signal()
			}
			wi.Stop()
			signal() // the watch ended: look again before a new one
		}
	}
	go follow(func() (watch.Interface, error) {
		return s.opts.Client.Watch(ctx, &v1alpha1.PipelineRunList{}, client.InNamespace(run.Namespace),
			client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("metadata.name", run.Name)})
	})
	go follow(func() (watch.Interface, error) { return s.opts.Logs.WatchStepPods(ctx, run) })
	return out
}
