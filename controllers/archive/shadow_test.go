package archive

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// A shadow keeps the window's whole lines within its limit, and when handed over
// yields what it kept, then what it goes on reading, in order, once.
func TestShadowKeepsTheWindowThenHandsOver(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit int
		// first is the first line the shadow keeps after it read lines 0-99, 10 at a
		// time a second apart, and pruned with a 30 s window at second 100.
		first int
	}{
		{name: "the window keeps the last 30 s", limit: 1 << 20, first: 70},
		{name: "the limit keeps less, from a line's start", limit: 1000, first: firstFitting(100, 1000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{}
			pr, pw := io.Pipe()
			sh := newShadow(func() { _ = pr.Close() })
			done := make(chan struct{})
			go func() {
				budget := int64(1 << 30)
				_, err := sh.fill(pr, &budget, func() int { return tc.limit }, clock.now)
				sh.mu.Lock()
				sh.endLocked(err, clock.now()) // as the standby's follow does
				sh.mu.Unlock()
				close(done)
			}()
			for i := 0; i < 100; i += 10 {
				clock.set(standbyT0.Add(time.Duration(i) * time.Second))
				if _, err := pw.Write([]byte(stampedLines(i, i+10))); err != nil {
					t.Fatal(err)
				}
				waitHolds(t, sh, stampedLines(i+9, i+10)) // read at this second
			}
			now := standbyT0.Add(100 * time.Second)
			sh.prune(now.Add(-30*time.Second), tc.limit)
			rc := sh.handover().rc
			go func() { _, _ = pw.Write([]byte(stampedLines(100, 120))); _ = pw.Close() }()
			got, err := io.ReadAll(rc)
			if err != nil {
				t.Fatal(err)
			}
			if want := stampedLines(tc.first, 120); string(got) != want {
				t.Errorf("handed over %d bytes starting %q; want lines %d-119 (%d bytes)", len(got), firstLine(got), tc.first, len(want))
			}
			<-done
		})
	}
}

// firstFitting is the first of lines [i, n) whose whole lines up to n fit in limit.
func firstFitting(n, limit int) int {
	i := 0
	for len(stampedLines(i, n)) > limit {
		i++
	}
	return i
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}

func waitHolds(t *testing.T, sh *shadow, last string) {
	t.Helper()
	for range 500 {
		sh.mu.Lock()
		ok := bytes.HasSuffix(sh.buf, []byte(last))
		sh.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("the shadow never read %q", last)
}

func waitSize(t *testing.T, sh *shadow, ok func(int) bool) {
	t.Helper()
	for range 500 {
		if ok(sh.size()) {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("the shadow holds %d bytes", sh.size())
}

// After the handover a slow reader holds the shadow's reads back: it never holds more
// than its limit. Closing the reader stops it.
func TestShadowHandedOverIsBounded(t *testing.T) {
	pr, pw := io.Pipe()
	sh := newShadow(func() { _ = pr.CloseWithError(io.ErrClosedPipe) })
	// The standby's share would be far more: a handed-over shadow keeps its own bound.
	budget := int64(1 << 40)
	go func() { _, _ = sh.fill(pr, &budget, func() int { return 1 << 30 }, time.Now) }()
	rc := sh.handover().rc
	writer := make(chan error, 1)
	go func() {
		for i := 0; ; i += 1000 {
			if _, err := pw.Write([]byte(stampedLines(i, i+1000))); err != nil {
				writer <- err
				return
			}
		}
	}()
	waitSize(t, sh, func(n int) bool { return n >= adoptedLimit })
	time.Sleep(50 * time.Millisecond)
	if n := sh.size(); n > adoptedLimit+32<<10 {
		t.Errorf("holds %d bytes with nobody reading; want at most %d and one read", n, adoptedLimit)
	}
	_ = rc.Close()
	if err := <-writer; err == nil {
		t.Error("the log kept being read after the reader closed")
	}
}

// A shadow whose stream ended early reads the log again from its last line's second:
// it keeps every line once when the new stream repeats that line, and drops what it
// had when a rotation took what lay between, rather than hold a hidden hole.
func TestShadowResumesAfterItsStreamEnds(t *testing.T) {
	for _, tc := range []struct {
		name            string
		again           string // the second stream, from the last line's second
		want            string
		partialFirstEnd bool // the first stream ended inside a line
	}{
		{name: "the new stream repeats the end", again: stampedLines(95, 150), want: stampedLines(0, 150)},
		{name: "it ended inside a line", again: stampedLines(99, 150), want: stampedLines(0, 150), partialFirstEnd: true},
		{name: "a rotation took lines between", again: stampedLines(120, 150), want: stampedLines(120, 150)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sh := newShadow(func() {})
			budget := int64(1 << 30)
			first := stampedLines(0, 100)
			if tc.partialFirstEnd {
				first += stampedLines(100, 101)[:20]
			}
			for _, in := range []string{first, ""} {
				if in == "" {
					since, _ := sh.reopen()
					if want := standbyT0.Add(99 * time.Millisecond); !since.Equal(want) {
						t.Fatalf("reopens from %v, want the last whole line's %v", since, want)
					}
					in = tc.again
				}
				if _, err := sh.fill(strings.NewReader(in), &budget, func() int { return 1 << 20 }, time.Now); err != io.EOF {
					t.Fatalf("fill: %v", err)
				}
			}
			if got := string(sh.buf); got != tc.want {
				t.Errorf("holds %d bytes from %q to %q; want %d bytes from %q", len(got), firstLine(sh.buf), tail(got), len(tc.want), firstLine([]byte(tc.want)))
			}
		})
	}
}

// sharedStamps is lines [from, to) of a log whose runtime stamps ten lines at once.
func sharedStamps(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "%s line %05d\n", standbyT0.Add(time.Duration(i/10)*time.Millisecond).Format(time.RFC3339Nano), i)
	}
	return b.String()
}

// A shadow is never cut inside a run of lines that share a timestamp: it holds all of
// them or none, so that skipping by count on a takeover or a resume is exact.
func TestShadowKeepsRunsOfATimestampWhole(t *testing.T) {
	for _, limit := range []int{100, 555, 1000, 2345} {
		sh := newShadow(func() {})
		sh.buf, sh.marks = []byte(sharedStamps(0, 100)), []mark{{at: 0, was: standbyT0}} // all read within the window
		sh.prune(time.Time{}, limit)
		first, held := firstLine(sh.buf), strings.Count(string(sh.buf), "\n")
		if held%10 != 0 {
			t.Errorf("limit %d: holds %d lines from %q; want whole runs of 10 (or none)", limit, held, first)
		}
	}
}

// Reading again after its stream ended: a 200 KiB line among those the shadow has is
// skipped by its timestamp (only 64 bytes of it held), not taken for a new one; once handed over,
// the shadow is not read again (the streamer goes on from the kubelet's file), and a
// stream that does not repeat its last line stops it rather than drop what a reader
// may still read.
func TestShadowResumeEdges(t *testing.T) {
	long := standbyT0.Add(98*time.Millisecond).Format(time.RFC3339Nano) + " " + strings.Repeat("y", 200<<10) + "\n"
	log := stampedLines(0, 98) + long + stampedLines(99, 100)
	sh := newShadow(func() {})
	budget := int64(1 << 30)
	if _, err := sh.fill(strings.NewReader(log), &budget, func() int { return 1 << 20 }, time.Now); err != io.EOF {
		t.Fatal(err)
	}
	if _, ok := sh.reopen(); !ok {
		t.Fatal("not reopened")
	}
	again := stampedLines(95, 98) + long + stampedLines(99, 120)
	if _, err := sh.fill(strings.NewReader(again), &budget, func() int { return 1 << 20 }, time.Now); err != io.EOF {
		t.Fatal(err)
	}
	if want := log + stampedLines(100, 120); string(sh.buf) != want {
		t.Errorf("holds %d bytes, want %d: each line once", len(sh.buf), len(want))
	}

	sh.handover()
	if _, ok := sh.reopen(); ok {
		t.Error("a handed-over shadow was read again")
	}

	held := newShadow(func() {})
	held.buf = []byte(stampedLines(0, 10))
	if _, ok := held.reopen(); !ok {
		t.Fatal("not reopened")
	}
	a := held.handover()
	if _, err := held.fill(strings.NewReader(stampedLines(50, 60)), &budget, func() int { return 1 << 20 }, time.Now); err != errShadowStopped {
		t.Errorf("a hole after the handover: fill ended with %v, want errShadowStopped", err)
	}
	held.mu.Lock()
	held.endLocked(errShadowStopped, time.Now())
	held.mu.Unlock()
	got, err := io.ReadAll(a.rc)
	if string(got) != stampedLines(0, 10) || err != errShadowStopped && err != nil {
		t.Errorf("the reader got %d bytes and %v; want what the shadow held, then its stop", len(got), err)
	}
}

// size is what the shadow holds.
func (s *shadow) size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.buf)
}
