package archive

import (
	"bytes"
	"time"

	"github.com/flow-ci/flow-ci/internal/archive/ingest"
)

// A followed log can end before its container does (the kubelet's stream breaks); a
// shadow then reads it again from the second of its last line, and skips what it has,
// as the leader's streamer does with its stored copy (ingest.Filter).

// reopen prepares the shadow to read its log again: it drops an unfinished last line
// and returns the timestamp of the last whole one (zero: it holds none, and reads the
// log afresh). Once handed over it does not (ok false): the streamer then reads the
// kubelet's file from what it stored, rather than take a second copy.
func (s *shadow) reopen() (since time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.adopted {
		return time.Time{}, false
	}
	end := bytes.LastIndexByte(s.buf, '\n')
	if end < 0 {
		s.buf, s.marks, s.skipping, s.pruned = s.buf[:0], nil, false, s.pruned || len(s.buf) > 0
		return time.Time{}, true
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
		s.buf, s.marks, s.pruned = s.buf[:0], nil, true
		return time.Time{}, true
	}
	s.resume, s.resuming, s.sawHeld, s.pending, s.dropLine = ingest.Resume{Time: last, Skip: n}, true, false, s.pending[:0], false
	return last, true
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
	return parseStamp(line[:i])
}

// parseStamp parses a kubelet timestamp (zero: it is none).
func parseStamp(b []byte) time.Time {
	if len(b) > 64 {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339Nano, string(b))
	return t
}

// resumeLocked passes p through while the shadow is not resuming; while it is, it drops
// p's lines up to the first one the shadow does not have, and returns what follows from
// there. It reads each line's timestamp only (at most 64 bytes held), so a long line
// costs nothing more. If the new stream does not repeat the shadow's last line, a
// rotation took what lay between: the shadow drops what it had, so that it never holds
// a hidden hole; once handed over it stops instead (halt), and the streamer reads the
// kubelet's file with its own check.
func (s *shadow) resumeLocked(p []byte) []byte {
	for s.resuming && len(p) > 0 {
		if s.dropLine { // the rest of a line the shadow has
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				return nil
			}
			p, s.dropLine = p[i+1:], false
			continue
		}
		j := bytes.IndexAny(p, " \n")
		if j < 0 {
			s.pending = append(s.pending, p...)
			if len(s.pending) < 64 {
				return nil // the timestamp goes on in the next read
			}
			p = nil
		} else {
			s.pending = append(s.pending, p[:j]...)
			p = p[j:]
		}
		if s.holds(s.pending) {
			s.pending, s.dropLine, s.sawHeld = s.pending[:0], true, true
			continue
		}
		s.resuming = false
		if !s.sawHeld {
			if s.adopted {
				s.halt = true
				return nil
			}
			s.buf, s.marks, s.pruned = s.buf[:0], nil, true
		}
		out := append(append([]byte(nil), s.pending...), p...)
		s.pending = nil
		return out
	}
	if s.resuming {
		return nil
	}
	return p
}

// holds says the line stamped stamp is one the shadow has, and counts it.
func (s *shadow) holds(stamp []byte) bool {
	t := parseStamp(stamp)
	return !t.IsZero() && s.resume.Had(t)
}
