package archive

import (
	"bytes"
	"time"
)

// A followed log can end before its container does (the kubelet's stream breaks); a
// shadow then reads it again from the second of its last line, and skips what it has,
// as the leader's streamer does with its stored copy (ingest.Filter).

// reopen prepares the shadow to read its log again: it drops an unfinished last line
// and returns the timestamp of the last whole one (zero: it holds none, and reads the
// log afresh).
func (s *shadow) reopen() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	end := bytes.LastIndexByte(s.buf, '\n')
	if end < 0 {
		s.buf, s.marks, s.skipping = s.buf[:0], nil, false
		return time.Time{}
	}
	s.buf, s.skipping = s.buf[:end+1], false
	kept := s.marks[:0]
	for _, m := range s.marks {
		if m.at < len(s.buf) {
			kept = append(kept, m)
		}
	}
	s.marks = kept
	last, n := lastStamps(s.buf)
	if last.IsZero() {
		s.buf, s.marks = s.buf[:0], nil
		return time.Time{}
	}
	s.resumeTime, s.resumeSkip, s.resuming, s.sawHeld, s.pending = last, n, true, false, s.pending[:0]
	return last
}

// lastStamps is the timestamp of buf's last whole line, and how many lines at its end
// carry it.
func lastStamps(buf []byte) (time.Time, int) {
	var last time.Time
	n := 0
	end := len(buf) - 1 // buf ends with a newline
	for end > 0 {
		start := bytes.LastIndexByte(buf[:end], '\n') + 1
		t := stampOf(buf[start:end])
		if t.IsZero() || !last.IsZero() && !t.Equal(last) {
			break
		}
		last, n = t, n+1
		end = start - 1
	}
	return last, n
}

// stampOf parses the kubelet's timestamp at the start of line (zero: none).
func stampOf(line []byte) time.Time {
	i := bytes.IndexByte(line[:min(len(line), 64)], ' ')
	if i <= 0 {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339Nano, string(line[:i]))
	return t
}

// resumeLocked passes p through while the shadow is not resuming; while it is, it holds
// p's lines until the first one the shadow does not have, and returns what follows from
// there. If the new stream does not repeat the shadow's last line, a rotation took what
// lay between: the shadow drops what it had, so that it never holds a hidden hole.
func (s *shadow) resumeLocked(p []byte, limit int) []byte {
	if !s.resuming {
		return p
	}
	s.pending = append(s.pending, p...)
	for {
		i := bytes.IndexByte(s.pending, '\n')
		if i < 0 {
			if len(s.pending) <= limit {
				return nil // the rest of a line to come
			}
			break // one line over the share: start afresh from it
		}
		t := stampOf(s.pending[:i])
		if !t.IsZero() && (t.Before(s.resumeTime) || t.Equal(s.resumeTime) && s.resumeSkip > 0) {
			if t.Equal(s.resumeTime) {
				s.resumeSkip--
			}
			s.sawHeld = true
			s.pending = s.pending[i+1:]
			continue
		}
		break
	}
	s.resuming = false
	if !s.sawHeld {
		s.buf, s.marks = s.buf[:0], nil
	}
	out := s.pending
	s.pending = nil
	return out
}
