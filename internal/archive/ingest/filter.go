// Package ingest turns a container's log, as the kubelet serves it with timestamps
// (`kubectl logs --timestamps`), into the bytes the archive stores: the container's own
// output, without the timestamps, with what a resumed stream repeats skipped, and with
// hostile output bounded (a line cap and a log cap, each leaving a marker). It is pure:
// the archive's streamers feed it what they read and store what it returns.
package ingest

import (
	"fmt"
	"strings"
	"time"

	"github.com/flow-ci/flow-ci/internal/archive"
)

// maxStamp bounds the timestamp prefix of a line: the kubelet writes RFC 3339 with
// nanoseconds (35 bytes); anything longer is not a timestamp.
const maxStamp = 40

// Filter is one stream's state between reads. Its zero value is not usable; see New.
type Filter struct {
	maxLine, maxBytes int64
	state             archive.LogState
	// resume: the lines an earlier stream stored, skipped until the first new one.
	resume  Resume
	resumed bool
	// sawStored: the stream repeated a stored line before its first new one, so it
	// carries on from the stored copy; gap: it did not, and the first new line is
	// preceded by a marker.
	sawStored, gap bool

	stamp    []byte // the current line's timestamp while it is read
	inStamp  bool   // at the start of a line, reading its timestamp
	skipLine bool   // the current line was stored before: drop it
	lineLen  int64  // bytes of the current line so far
	lineCut  bool   // the current line passed maxLine
	lineTime time.Time
	// line holds the current line's bytes until its newline: a stored line is always
	// whole, so that the state saved with it (LastTime, AtLastTime) says exactly where
	// a resumed stream picks up.
	line []byte
}

// New starts a filter for a stream whose stored copy is st: the lines it repeats up
// to st's last timestamp are skipped. maxLine caps one line, maxBytes the whole log.
func New(st archive.LogState, maxLine, maxBytes int64) *Filter {
	return &Filter{
		maxLine: maxLine, maxBytes: maxBytes, state: st,
		resume: Resume{Time: st.LastTime, Skip: st.AtLastTime}, resumed: st.LastTime.IsZero(),
		inStamp: true,
	}
}

// State is the log's state after the whole lines returned so far.
func (f *Filter) State() archive.LogState { return f.state }

// Cut reports that the log reached its cap: nothing more will be stored.
func (f *Filter) Cut() bool { return f.state.Cut }

// Pending is how many bytes of an unfinished line the filter holds.
func (f *Filter) Pending() int { return len(f.line) }

// Feed reads p, a piece of the timestamped stream, and appends to out the whole lines
// that complete in it, ready to store; State then covers them.
func (f *Filter) Feed(p []byte, out []byte) []byte {
	for len(p) > 0 && !f.state.Cut {
		if f.inStamp {
			p = f.readStamp(p)
			continue
		}
		i := indexNL(p)
		end := len(p)
		if i >= 0 {
			end = i + 1
		}
		f.addToLine(p[:end])
		p = p[end:]
		if i >= 0 {
			out = f.endLine(out)
		}
	}
	return out
}

// Flush ends the stream: an unfinished last line (one the container wrote without a
// newline) is returned as it is.
func (f *Filter) Flush(out []byte) []byte {
	if f.inStamp || f.skipLine || len(f.line) == 0 && !f.lineCut {
		return out
	}
	return f.endLine(out)
}

// readStamp consumes the timestamp and the space after it at a line's start.
func (f *Filter) readStamp(p []byte) []byte {
	for i, b := range p {
		if b != ' ' && b != '\n' && len(f.stamp) < maxStamp {
			f.stamp = append(f.stamp, b)
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, string(f.stamp))
		if err != nil {
			// Not a timestamp: keep the bytes as the line's start, dated as the last.
			t = f.state.LastTime
			f.startLine(t)
			f.addToLine(f.stamp)
			f.stamp = f.stamp[:0]
			return p[i:]
		}
		f.stamp = f.stamp[:0]
		f.startLine(t)
		if b == '\n' {
			return p[i:] // an empty line: its newline is its content
		}
		return p[i+1:]
	}
	return nil
}

func (f *Filter) startLine(t time.Time) {
	f.inStamp = false
	f.lineTime, f.lineLen, f.lineCut = t, 0, false
	f.skipLine = f.repeats(t)
}

// repeats says whether a line stamped t was stored by an earlier stream, and counts it.
func (f *Filter) repeats(t time.Time) bool {
	if f.resumed {
		return false
	}
	if f.resume.Had(t) {
		f.sawStored = true
		return true
	}
	f.resumed = true
	// The kubelet serves its current file from the stored last line's second on: when
	// that line is not in it, the file was rotated after it, and what came between
	// (possibly nothing) is out of reach. Say so where it happened.
	f.gap = !f.sawStored
	return false
}

// addToLine adds a piece of the current line; its newline, if b ends with one, does not
// count against the line's cap.
func (f *Filter) addToLine(b []byte) {
	if f.skipLine {
		return
	}
	nl := len(b) > 0 && b[len(b)-1] == '\n'
	if nl {
		b = b[:len(b)-1]
	}
	if room := f.maxLine - f.lineLen; int64(len(b)) > room {
		b, f.lineCut = b[:max(room, 0)], true
	}
	f.line = append(f.line, b...)
	f.lineLen += int64(len(b))
	if nl && !f.lineCut {
		f.line = append(f.line, '\n')
	}
}

// endLine appends the finished line (with a marker when it was cut) to out and counts
// it in the state, unless it was stored before or the log's cap is reached.
func (f *Filter) endLine(out []byte) []byte {
	defer func() { f.line, f.inStamp, f.skipLine = f.line[:0], true, false }()
	if f.skipLine {
		return out
	}
	line := f.line
	if f.gap {
		f.gap = false
		out = f.markGap(out)
	}
	if f.lineCut {
		line = append(line, fmt.Sprintf(" [flow-ci: line cut at %d bytes]\n", f.maxLine)...)
	}
	if f.state.Bytes+int64(len(line)) > f.maxBytes {
		marker := fmt.Sprintf("\n[flow-ci: log cut at %d bytes; the rest was not stored]\n", f.state.Bytes)
		out = append(out, marker...)
		f.state.Bytes += int64(len(marker))
		f.state.Cut = true
		return out
	}
	out = append(out, line...)
	f.state.Bytes += int64(len(line))
	if f.lineTime.Equal(f.state.LastTime) {
		f.state.AtLastTime++
	} else {
		f.state.LastTime, f.state.AtLastTime = f.lineTime, 1
	}
	return out
}

// maxMissing bounds the gaps listed in the state's Missing; the markers in the log
// show every one.
const maxMissing = 1024

// markGap appends the marker of lines that may be missing before the current line, and
// notes them in the state.
func (f *Filter) markGap(out []byte) []byte {
	from, to := f.resume.Time.Format(time.RFC3339Nano), f.lineTime.Format(time.RFC3339Nano)
	marker := fmt.Sprintf("[flow-ci: lines printed between %s and %s may be missing: the kubelet rotated them out of the log it serves while no archive read it]\n", from, to)
	out = append(out, marker...)
	note := fmt.Sprintf("lines between %s and %s, at byte %d", from, to, f.state.Bytes)
	f.state.Bytes += int64(len(marker))
	switch m := f.state.Missing; {
	case m == "":
		f.state.Missing = note
	case len(m)+len(note) < maxMissing:
		f.state.Missing = m + "; " + note
	case !strings.HasSuffix(m, moreGaps):
		f.state.Missing = m + moreGaps
	}
	return out
}

const moreGaps = "; more (see the markers in the log)"

func indexNL(p []byte) int {
	for i, b := range p {
		if b == '\n' {
			return i
		}
	}
	return -1
}
