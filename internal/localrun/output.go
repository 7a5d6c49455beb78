package localrun

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// output serialises the steps' output onto one writer, a whole line at a time, each
// line prefixed with its step when steps may run side by side.
type output struct {
	mu     sync.Mutex
	w      io.Writer
	prefix bool
}

func newOutput(w io.Writer, prefix bool) *output {
	if w == nil {
		w = io.Discard
	}
	return &output{w: w, prefix: prefix}
}

// header prints a line about a step: "==> name: what".
func (o *output) header(name, what string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.w, "==> %s: %s\n", name, what)
}

// step is a line writer for one step's output.
func (o *output) step(name string) *lineWriter {
	p := ""
	if o.prefix {
		p = "[" + name + "] "
	}
	return &lineWriter{o: o, prefix: p}
}

// lineWriter buffers a partial line until its newline, so that lines of steps that run
// side by side never interleave mid-line.
type lineWriter struct {
	o      *output
	prefix string
	buf    []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.emit(l.buf[:i+1])
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

// Flush writes a last line that has no newline.
func (l *lineWriter) Flush() {
	if len(l.buf) > 0 {
		l.emit(append(l.buf, '\n'))
		l.buf = nil
	}
}

func (l *lineWriter) emit(line []byte) {
	l.o.mu.Lock()
	defer l.o.mu.Unlock()
	_, _ = io.WriteString(l.o.w, l.prefix)
	_, _ = l.o.w.Write(line)
}
