package mask

import (
	"errors"
	"io"
)

var errClosed = errors.New("mask: write to a closed Writer")

// Writer masks a byte stream on its way to another io.Writer. A value may arrive split
// across any number of Write calls, even byte by byte. It is for one goroutine (such as
// io.Copy from a pipe): its methods must not be called concurrently.
//
// How much to hold back: let b be the bytes not yet written out (the held bytes followed
// by the new data) and p the earliest position such that b[p:] is a proper prefix of
// some value (p = len(b) if none is). Writer writes b[:p] masked and holds b[p:].
//
//   - An occurrence that starts at some s < p in b lies within b: b[s:] is not a proper
//     prefix of any value (p is the earliest), so no more data can complete one at s.
//     Occurrences that start before b were seen by earlier calls, by the same argument.
//     So whether a byte before p is hidden is final when it is written. An occurrence
//     that starts before p and ends after it hides held bytes too: covered carries how
//     far it reaches, rather than holding the occurrence back.
//   - Every occurrence that starts at p or later is seen whole by a later call: the
//     held bytes start at p, and until the occurrence is complete the suffix from its
//     start is a proper prefix of a value, so every later p stays at or before it.
//     Close takes p = len(b).
//
// So the bytes hidden are exactly those String hides in the whole stream. A run of
// hidden bytes that reaches the end of one piece of output and goes on at the start of
// the next is written as one "***" (inRun), so the output as a whole equals String of the
// whole stream, however it was split. In particular no byte of an occurrence is ever
// written, not even of one that the stream completes only later.
//
// Latency and memory: values contain no '\n', so p is after the last newline, and a
// proper prefix is shorter than the longest value, so p > len(b) - longest. Complete
// lines are written at once; so is a prompt without a newline unless its end could start
// a secret. At most longest-1 bytes are held between calls, and b is at most that plus
// one Write, however long a line without newline grows.
type Writer struct {
	m       *Masker
	w       io.Writer
	held    []byte // the bytes from p on, not yet written
	covered int    // how many of held are hidden by an occurrence already written in part
	inRun   bool   // the output so far ends with the "***" of a hidden byte
	out     []byte // the masked bytes of one call, reused
	err     error  // the first error from w: later output would have a gap
	closed  bool
}

// Writer returns a Writer that writes the stream masked to w. Close it to write the
// held rest.
func (m *Masker) Writer(w io.Writer) *Writer { return &Writer{m: m, w: w} }

// Write masks p and writes what can be written now; the rest waits for more data or
// Close. It returns len(p) when w accepted the output, and the first error of w (from
// this call or an earlier one) otherwise.
func (w *Writer) Write(p []byte) (int, error) {
	switch {
	case w.closed:
		return 0, errClosed
	case w.err != nil:
		return 0, w.err
	case w.m.Empty():
		n, err := w.w.Write(p)
		w.err = err
		return n, err
	}
	w.held = append(w.held, p...)
	w.emit(w.m.holdFrom(w.held))
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// Close writes the held bytes, masked. It does not close the underlying writer, which
// may be shared (os.Stdout). Writes after Close fail; Close again does nothing.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err == nil && len(w.held) > 0 {
		w.emit(len(w.held))
	}
	return w.err
}

// emit writes held[:n] masked and keeps held[n:].
func (w *Writer) emit(n int) {
	out, covered, inRun := w.m.appendMasked(w.out[:0], w.held, n, w.covered, w.inRun)
	w.held = w.held[:copy(w.held, w.held[n:])]
	w.covered, w.inRun, w.out = covered, inRun, out
	if len(out) > 0 {
		_, w.err = w.w.Write(out)
	}
}
