package archive

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/flow-ci/flow-ci/internal/archive/ingest"
)

// errShadowStopped ends a handed-over shadow that had stopped reading before its
// stream ended (its read budget, or the standby stopping): the streamer then opens the
// log again from where its stored copy ends.
var errShadowStopped = errors.New("the standby stopped reading this log")

// shadow is one container's log as a standby replica reads it: the timestamped stream,
// of which it keeps the last window (whole lines, at most its share of the standby's
// budget) until the replica leads; then handover turns it into the stream the leader's
// streamer reads, buffered lines first.
type shadow struct {
	mu   sync.Mutex
	cond *sync.Cond
	buf  []byte // from a line's start; may end inside a line
	// marks are where each read began in buf and when, oldest first, for the window.
	marks   []mark
	err     error     // the stream ended (io.EOF) or broke; buf still holds its tail
	endedAt time.Time // when err was set
	adopted bool      // handed over: kept whole, drained by the reader
	// skipping: the start of the line being read was pruned; the rest is dropped.
	skipping bool
	// resuming: the log is read again after its stream ended, and the lines it has
	// (resume) are dropped; pending holds a line's timestamp until it is known, and
	// sawHeld says one was seen (shadowresume.go).
	resuming bool
	resume   ingest.Resume
	sawHeld  bool
	pending  []byte
	dropLine bool // the rest of a line it has is dropped
	// halt: handed over while resuming, the new stream did not repeat the shadow's last
	// line; it stops, and the streamer reads the kubelet's file with its own check.
	halt bool
	// pruned: the shadow does not hold its log from the start of the kubelet's file it
	// first read (it dropped lines, or read afresh after a break).
	pruned bool
	closed bool // the reader closed it: the producer stops
	cancel context.CancelFunc
}

type mark struct {
	at  int
	was time.Time
}

func newShadow(cancel context.CancelFunc) *shadow {
	s := &shadow{cancel: cancel}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// fill reads rc into the shadow until rc ends or breaks (its error), the budget of
// bytes read is spent (errShadowStopped), or the shadow is closed (io.ErrClosedPipe),
// and says how many bytes it added. It never holds more than limit() bytes: before the
// handover older lines are dropped, after it the reader's pace holds the reads back.
func (s *shadow) fill(rc io.Reader, budget *int64, limit func() int, now func() time.Time) (added int64, err error) {
	p := make([]byte, 32<<10)
	for *budget > 0 {
		n, err := rc.Read(p[:min(int64(len(p)), *budget)])
		*budget -= int64(n)
		lim := limit() // before s.mu: the standby's prune holds its lock, then ours
		s.mu.Lock()
		if s.adopted {
			lim = adoptedLimit
		}
		for s.adopted && !s.closed && len(s.buf) >= lim {
			s.cond.Wait()
		}
		if s.closed {
			s.mu.Unlock()
			return added, io.ErrClosedPipe
		}
		got := s.skipRest(s.resumeLocked(p[:n]))
		if s.halt {
			s.mu.Unlock()
			return added, errShadowStopped
		}
		if len(got) > 0 {
			s.markLocked(now())
			s.buf = append(s.buf, got...)
			added += int64(len(got))
			if len(s.buf) > lim+lim/4 {
				s.pruneLocked(time.Time{}, lim) // between the standby's prunes
			}
			s.cond.Broadcast()
		}
		s.mu.Unlock()
		if err != nil {
			return added, err
		}
	}
	return added, errShadowStopped
}

// adoptedLimit bounds what a handed-over shadow holds ahead of its reader: the
// reader's pace then holds the stream back, as a stream read directly would be.
const adoptedLimit = 1 << 20

// markLocked notes where a read begins and when, at most one mark a second: the window
// needs no finer grain, and a mark per short read would cost as much as the lines.
func (s *shadow) markLocked(now time.Time) {
	if s.adopted {
		return
	}
	if n := len(s.marks); n > 0 && now.Sub(s.marks[n-1].was) < time.Second {
		return
	}
	s.marks = append(s.marks, mark{at: len(s.buf), was: now})
}

// skipRest drops from p the rest of a line whose start was pruned.
func (s *shadow) skipRest(p []byte) []byte {
	if !s.skipping {
		return p
	}
	i := bytes.IndexByte(p, '\n')
	if i < 0 {
		return nil
	}
	s.skipping = false
	return p[i+1:]
}

func (s *shadow) endLocked(err error, now time.Time) {
	if s.err == nil {
		s.err, s.endedAt = err, now
	}
	s.cond.Broadcast()
}

// prune drops, before the handover, the lines read before the window began, and the
// oldest lines past limit bytes; what is kept starts at a line.
func (s *shadow) prune(since time.Time, limit int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(since, limit)
}

func (s *shadow) pruneLocked(since time.Time, limit int) {
	if s.adopted {
		return
	}
	cut := len(s.buf)
	for _, m := range s.marks {
		if !m.was.Before(since) {
			cut = m.at
			break
		}
	}
	cut = max(cut, len(s.buf)-limit)
	// Keep the last whole lines of a quiet log (those of its last timestamp): a new
	// leader sees in them where its stored copy ends, rather than a gap before the next.
	if end := bytes.LastIndexByte(s.buf, '\n'); end >= 0 {
		last := runStart(s.buf, bytes.LastIndexByte(s.buf[:end], '\n')+1)
		if cut > last && len(s.buf)-last <= limit {
			cut = last
		}
	}
	if cut <= 0 {
		return
	}
	if s.buf[cut-1] != '\n' {
		// Keep from the next line's start; with none, drop the rest of this line as it
		// is read.
		if i := bytes.IndexByte(s.buf[cut:], '\n'); i >= 0 {
			cut += i + 1
		} else {
			cut, s.skipping = len(s.buf), true
		}
	}
	cut = pastRun(s.buf, cut)
	s.buf, s.pruned = append([]byte(nil), s.buf[cut:]...), true
	kept := s.marks[:0]
	for _, m := range s.marks {
		switch {
		case m.at >= cut:
			kept = append(kept, mark{at: m.at - cut, was: m.was})
		case len(kept) == 0:
			kept = append(kept, mark{at: 0, was: m.was}) // the read cut into: the rest keeps its time
		default:
			kept[0].was = m.was
		}
	}
	s.marks = kept
}

// Lines can share a timestamp (a runtime may stamp a whole read once), and a resumed
// stream skips the stored lines of the last timestamp by count: a shadow is never cut
// inside such a run, so that it holds all of a timestamp's lines or none.

// runStart is the start of the run of lines stamped as the line at i, whole lines
// from i back.
func runStart(buf []byte, i int) int {
	t := stampOf(buf[i:])
	for i > 0 && !t.IsZero() {
		prev := bytes.LastIndexByte(buf[:i-1], '\n') + 1
		if !stampOf(buf[prev:i]).Equal(t) {
			break
		}
		i = prev
	}
	return i
}

// pastRun moves a cut at a line's start past the lines stamped as the one before it.
func pastRun(buf []byte, cut int) int {
	if cut <= 0 || cut >= len(buf) {
		return cut
	}
	t := stampOf(buf[bytes.LastIndexByte(buf[:cut-1], '\n')+1 : cut])
	for cut < len(buf) && !t.IsZero() {
		end := bytes.IndexByte(buf[cut:], '\n')
		if end < 0 || !stampOf(buf[cut:cut+end]).Equal(t) {
			break
		}
		cut += end + 1
	}
	return cut
}

// broke says the stream ended otherwise than at the log's end.
func (s *shadow) broke() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err != nil && !errors.Is(s.err, io.EOF) && !errors.Is(s.err, errShadowStopped)
}

// exhausted says the shadow stopped at its read budget.
func (s *shadow) exhausted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Is(s.err, errShadowStopped) && !s.halt
}

// endedBefore says the stream ended before t, so nobody needs its tail any more.
func (s *shadow) endedBefore(t time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err != nil && s.endedAt.Before(t)
}

// handover makes the shadow the stream a streamer reads: what it kept, then what it
// goes on reading.
func (s *shadow) handover() adopted {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.adopted, s.marks = true, nil
	return adopted{rc: (*shadowReader)(s), bytes: len(s.buf), first: stampOf(s.buf), pruned: s.pruned}
}

// shadowReader reads a handed-over shadow.
type shadowReader shadow

func (r *shadowReader) Read(p []byte) (int, error) {
	s := (*shadow)(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.buf) == 0 && s.err == nil && !s.closed {
		s.cond.Wait()
	}
	if len(s.buf) == 0 {
		if s.closed {
			return 0, io.ErrClosedPipe
		}
		return 0, s.err
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	if len(s.buf) == 0 {
		s.buf = nil // not the drained array: it may be a whole share
	}
	s.cond.Broadcast()
	return n, nil
}

func (r *shadowReader) Close() error {
	s := (*shadow)(r)
	s.mu.Lock()
	s.closed, s.buf = true, nil
	s.cond.Broadcast()
	s.mu.Unlock()
	s.cancel()
	return nil
}
