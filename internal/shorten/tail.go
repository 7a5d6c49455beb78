package shorten

import "sync"

// TailWriter keeps the last Max bytes written to it, for a step's log tail: what a
// failed step's status shows, and what a wrapper writes into a termination message.
// Writes may come from two goroutines (a process's stdout and stderr copies).
type TailWriter struct {
	Max int

	mu  sync.Mutex
	buf []byte
}

// Write keeps p's end; it never fails. The buffer is cut back only once it holds twice
// Max, so a long log costs an amortized copy, not one per write.
func (t *TailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.Max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.Max:]...)
	}
	return len(p), nil
}

// String is the last Max bytes written.
func (t *TailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.buf) > t.Max {
		return string(t.buf[len(t.buf)-t.Max:])
	}
	return string(t.buf)
}
