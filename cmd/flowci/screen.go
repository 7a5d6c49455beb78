package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/podlogs"
)

// screen serialises the CLI's output. On a terminal it colours step headers and
// phases, and keeps a live progress line at the bottom, cleared before each line of
// output and drawn again after it; piped, it prints plain lines only.
type screen struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	progress string
}

func newScreen(w io.Writer) *screen { return &screen{w: w, tty: terminal(w)} }

const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
	clearLine  = "\r\x1b[K"
)

func (s *screen) paint(code, text string) string {
	if !s.tty || code == "" {
		return text
	}
	return code + text + ansiReset
}

// phaseColour is the colour of a run's or step's phase.
func phaseColour(phase string) string {
	switch phase {
	case string(v1alpha1.PhaseSucceeded):
		return ansiGreen
	case string(v1alpha1.PhaseFailed), string(v1alpha1.PhaseCancelled):
		return ansiRed
	case string(v1alpha1.PhaseRunning), string(v1alpha1.PhasePending), string(v1alpha1.PhaseQueued):
		return ansiYellow
	}
	return ""
}

// line prints one line of output (without its newline).
func (s *screen) line(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tty && s.progress != "" {
		_, _ = io.WriteString(s.w, clearLine)
	}
	_, _ = io.WriteString(s.w, text+"\n")
	if s.tty && s.progress != "" {
		_, _ = io.WriteString(s.w, s.progress)
	}
}

// header prints "==> step: what", what coloured by its phase when it starts with one.
func (s *screen) header(step, what string) {
	word, rest, _ := strings.Cut(what, " ")
	s.line(s.paint(ansiCyan+ansiBold, "==> "+step+":") + " " + strings.TrimSpace(s.paint(phaseColour(word), word)+" "+rest))
}

// prefixed is a step's log line, with its [step] prefix when steps overlap.
func (s *screen) prefixed(prefix, text string) {
	if prefix == "" {
		s.line(text)
		return
	}
	s.line(s.paint(ansiCyan, "["+prefix+"]") + " " + text)
}

// setProgress redraws the progress line (terminal only).
func (s *screen) setProgress(run *v1alpha1.PipelineRun, since time.Time) {
	if !s.tty {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := run.Status
	text := fmt.Sprintf("%s %s %s", s.paint(ansiBold, run.Name), s.paint(phaseColour(string(st.Phase)), string(st.Phase)), st.Progress)
	if st.CurrentStep != "" {
		text += " " + st.CurrentStep
	}
	text += fmt.Sprintf(" %s", time.Since(since).Round(time.Second))
	s.progress = text
	_, _ = io.WriteString(s.w, clearLine+text)
}

// done clears the progress line for good.
func (s *screen) done() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tty && s.progress != "" {
		_, _ = io.WriteString(s.w, clearLine)
	}
	s.progress = ""
}

// logWriter returns a writer of one log's bytes onto the screen, and end, which
// finishes it. Without a prefix the bytes go out exactly as they are (end adds the
// newline a log may lack at its end); with one, each line goes out prefixed, cut at
// podlogs.MaxLineBytes as a pod's lines are. Writes may split lines anywhere.
func (s *screen) logWriter(prefix string) (w io.Writer, end func()) {
	if prefix == "" {
		r := &rawLog{s: s}
		return r, r.end
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := podlogs.ScanLines(pr, 0, func(_ int, text string) { s.prefixed(prefix, text) })
		pr.CloseWithError(err) // a writer still writing learns the lines go nowhere
	}()
	return pw, func() { _ = pw.Close(); <-done }
}

// rawLog writes a log's bytes as they are, around the progress line.
type rawLog struct {
	s       *screen
	midLine bool // the last byte written was not a newline
}

func (r *rawLog) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	redraw := s.tty && s.progress != ""
	if redraw && !r.midLine {
		_, _ = io.WriteString(s.w, clearLine)
	}
	n, err := s.w.Write(p)
	r.midLine = p[len(p)-1] != '\n'
	if redraw && !r.midLine {
		_, _ = io.WriteString(s.w, s.progress)
	}
	return n, err
}

func (r *rawLog) end() {
	if r.midLine {
		_, _ = r.Write([]byte("\n"))
	}
}
