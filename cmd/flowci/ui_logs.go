package main

import (
	"bufio"
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

// logSink receives a step's log: numbered lines, where they come from, and the end.
type logSink interface {
	source(from string)
	line(n int, text string)
	end(phase string)
}

// sseSink writes server-sent events: "line" events carry the line number as their id,
// so a reconnecting EventSource resumes after the last line it got (Last-Event-ID).
type sseSink struct {
	w http.ResponseWriter
	f http.Flusher
}

func (s sseSink) source(from string) {
	fmt.Fprintf(s.w, "event: source\ndata: %s\n\n", from)
	s.f.Flush()
}
func (s sseSink) line(n int, text string) {
	// A carriage return would end the event's data line early (progress bars print them).
	fmt.Fprintf(s.w, "id: %d\nevent: line\ndata: %s\n\n", n, strings.ReplaceAll(text, "\r", ""))
	s.f.Flush()
}
func (s sseSink) end(phase string) { fmt.Fprintf(s.w, "event: end\ndata: %s\n\n", phase); s.f.Flush() }

// textSink writes plain text, for readers without JavaScript.
type textSink struct{ w io.Writer }

func (t textSink) source(from string) {
	if from == "status" {
		fmt.Fprintln(t.w, "(the step's pods are gone: this is the log tail kept in the run's status)")
	}
}
func (t textSink) line(_ int, text string) { fmt.Fprintln(t.w, text) }
func (t textSink) end(string)              {}

// stepLog serves step i's log: live from its pod while it runs (following, as
// server-sent events), complete once it ended, or the tail kept in status when its pods
// are gone, labelled as such. ?format=text is plain text; Last-Event-ID or ?from=N
// resumes after line N.
func (s *uiServer) stepLog(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("ns"), r.PathValue("name")
	if err := errorsJoin(checkName("namespace", ns, false), checkName("run", name, false)); err != nil {
		s.fail(w, err)
		return
	}
	idx, err := strconv.Atoi(r.PathValue("step"))
	if err != nil || idx < 0 || idx >= v1alpha1.MaxSteps {
		s.fail(w, badRequest{fmt.Sprintf("step %q is not a step index", r.PathValue("step"))})
		return
	}
	run := &v1alpha1.PipelineRun{}
	if err := s.k.c.Get(r.Context(), client.ObjectKey{Namespace: ns, Name: name}, run); err != nil {
		s.fail(w, err)
		return
	}
	if idx >= len(run.Status.Steps) {
		s.fail(w, badRequest{fmt.Sprintf("run %s has %d steps", name, len(run.Status.Steps))})
		return
	}
	from := 0
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		from, _ = strconv.Atoi(v)
	} else if v := r.URL.Query().Get("from"); v != "" {
		from, _ = strconv.Atoi(v)
	}
	var sink logSink
	follow := r.URL.Query().Get("format") != "text"
	if follow {
		f, ok := w.(http.Flusher)
		if !ok {
			s.fail(w, fmt.Errorf("streaming is not supported"))
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		sink = sseSink{w: w, f: f}
	} else {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		sink = textSink{w: w}
	}
	s.streamStep(r.Context(), run, idx, from, follow, sink)
}

// streamStep waits for the step's pod while the step is pending or starting, then
// copies its log; a step that ended without pods gives its status tail.
func (s *uiServer) streamStep(ctx context.Context, run *v1alpha1.PipelineRun, idx, from int, follow bool, sink logSink) {
	for {
		st := run.Status.Steps[idx]
		pods, _ := stepPods(ctx, s.k, run)
		pod := pods[idx]
		switch {
		case pod != nil && containerStarted(pod):
			sink.source("pod")
			n := s.copyPodLog(ctx, pod, from, follow && !runstate.IsTerminal(st.Phase), sink)
			if follow && !runstate.IsTerminal(st.Phase) {
				from = n // the pod's log ended: the step ended, or its pod was replaced
				break
			}
			sink.end(string(st.Phase))
			return
		case runstate.IsTerminal(st.Phase) || run.Status.Phase.IsFinished() || !follow:
			sink.source("status")
			for n, text := range splitLines(st.Message) {
				if n+1 > from {
					sink.line(n+1, text)
				}
			}
			sink.end(string(st.Phase))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pollEvery):
		}
		fresh := &v1alpha1.PipelineRun{}
		if err := s.k.c.Get(ctx, client.ObjectKeyFromObject(run), fresh); err != nil {
			return
		}
		run = fresh
	}
}

// copyPodLog sends the pod's log lines after line from, and returns the last line's
// number.
func (s *uiServer) copyPodLog(ctx context.Context, pod *corev1.Pod, from int, follow bool, sink logSink) int {
	rc, err := s.k.pods.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{Container: "step", Follow: follow}).Stream(ctx)
	if err != nil {
		return from
	}
	defer func() { _ = rc.Close() }()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		if n > from {
			sink.line(n, sc.Text())
		}
	}
	return max(n, from)
}

// badge is an SVG status badge of a trigger's branch, at a stable URL.
func (s *uiServer) badge(w http.ResponseWriter, r *http.Request) {
	ns, name, branch := r.PathValue("ns"), r.PathValue("trigger"), strings.TrimSuffix(r.PathValue("branch"), ".svg")
	if err := errorsJoin(checkName("namespace", ns, false), checkName("trigger", name, false)); err != nil {
		s.fail(w, err)
		return
	}
	trig := &v1alpha1.PipelineTrigger{}
	if err := s.k.c.Get(r.Context(), client.ObjectKey{Namespace: ns, Name: name}, trig); err != nil {
		s.fail(w, err)
		return
	}
	text, colour := "unknown", "#9f9f9f"
	for _, b := range trig.Status.Branches {
		if b.Name != branch {
			continue
		}
		switch b.LastRunPhase {
		case v1alpha1.PhaseSucceeded:
			text, colour = "passing", "#2e7d32"
		case v1alpha1.PhaseFailed:
			text, colour = "failing", "#c62828"
		case v1alpha1.PhaseCancelled:
			text, colour = "cancelled", "#6d6d6d"
		case v1alpha1.PhasePending, v1alpha1.PhaseRunning, v1alpha1.PhaseQueued:
			text, colour = "running", "#b26a00"
		}
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "no-cache, max-age=0")
	label := "flow-ci"
	lw, tw := 6*len(label)+12, 6*len(text)+12
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="20" role="img" aria-label="%s: %s">`+
		`<rect width="%d" height="20" fill="#555"/><rect x="%d" width="%d" height="20" fill="%s"/>`+
		`<g fill="#fff" font-family="Verdana,sans-serif" font-size="11"><text x="6" y="14">%s</text><text x="%d" y="14">%s</text></g></svg>`,
		lw+tw, label, html.EscapeString(text), lw, lw, tw, colour, label, lw+6, html.EscapeString(text))
}
