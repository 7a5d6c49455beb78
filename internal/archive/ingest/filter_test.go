package ingest

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/flow-ci/flow-ci/internal/archive"
)

var t0 = time.Date(2026, 12, 6, 17, 0, 0, 123456789, time.UTC)

// stamped writes lines as the kubelet serves them with timestamps: one per line.
func stamped(lines []string, times []time.Time) string {
	var b strings.Builder
	for i, l := range lines {
		b.WriteString(times[i].Format("2006-01-02T15:04:05.000000000Z07:00"))
		b.WriteString(" ")
		b.WriteString(l)
	}
	return b.String()
}

func at(ns ...int) []time.Time {
	out := make([]time.Time, len(ns))
	for i, n := range ns {
		out[i] = t0.Add(time.Duration(n))
	}
	return out
}

// feedInPieces feeds s n bytes at a time, so that every split point is exercised.
func feedInPieces(f *Filter, s string, n int) string {
	var out []byte
	for len(s) > 0 {
		k := min(n, len(s))
		out = f.Feed([]byte(s[:k]), out)
		s = s[k:]
	}
	return string(f.Flush(out))
}

func TestFilter(t *testing.T) {
	long := strings.Repeat("x", 30)
	cases := []struct {
		name    string
		raw     string // the stream as is, instead of lines stamped with times
		from    archive.LogState
		lines   []string
		times   []time.Time
		maxLine int64
		maxLog  int64
		want    string
		last    int // nanoseconds after t0 of the state's LastTime
		atLast  int
		cut     bool
		missing string
	}{
		{name: "plain lines", lines: []string{"a\n", "bc\n", "\n"}, times: at(1, 2, 3),
			want: "a\nbc\n\n", last: 3, atLast: 1},
		{name: "same timestamp counted", lines: []string{"a\n", "b\n", "c\n"}, times: at(1, 2, 2),
			want: "a\nb\nc\n", last: 2, atLast: 2},
		{name: "last line without newline", lines: []string{"a\n", "tail"}, times: at(1, 2),
			want: "a\ntail", last: 2, atLast: 1},
		{name: "binary and invalid UTF-8 kept", lines: []string{"\xff\x00\xfe\n"}, times: at(1),
			want: "\xff\x00\xfe\n", last: 1, atLast: 1},
		{name: "resume skips what was stored", from: archive.LogState{Bytes: 4, LastTime: t0.Add(2), AtLastTime: 1},
			lines: []string{"a\n", "b\n", "c\n", "d\n"}, times: at(1, 2, 2, 3), want: "c\nd\n", last: 3, atLast: 1},
		{name: "resume skips all at the same time", from: archive.LogState{Bytes: 4, LastTime: t0.Add(2), AtLastTime: 2},
			lines: []string{"b\n", "c\n", "d\n"}, times: at(2, 2, 2), want: "d\n", last: 2, atLast: 3},
		{name: "resume with nothing new", from: archive.LogState{Bytes: 2, LastTime: t0.Add(5), AtLastTime: 1},
			lines: []string{"a\n"}, times: at(5), want: "", last: 5, atLast: 1},
		{name: "long line cut with a marker", lines: []string{long + "\n", "ok\n"}, times: at(1, 2), maxLine: 10,
			want: "xxxxxxxxxx [flow-ci: line cut at 10 bytes]\nok\n", last: 2, atLast: 1},
		{name: "line of exactly the cap keeps its newline", lines: []string{strings.Repeat("y", 10) + "\n"}, times: at(1), maxLine: 10,
			want: "yyyyyyyyyy\n", last: 1, atLast: 1},
		{name: "log cap leaves a marker and stops", lines: []string{"aaaa\n", "bbbb\n", "cccc\n"}, times: at(1, 2, 3), maxLog: 12,
			want: "aaaa\nbbbb\n\n[flow-ci: log cut at 10 bytes; the rest was not stored]\n", last: 2, atLast: 1, cut: true},
		{name: "a line without a timestamp is kept", raw: "garbage line\n", want: "garbage line\n", atLast: 1},
		{name: "resume after a rotation marks the gap", from: archive.LogState{Bytes: 4, LastTime: t0.Add(2), AtLastTime: 1},
			lines: []string{"e\n", "f\n"}, times: at(5, 6), want: gapMarker(2, 5) + "e\nf\n", last: 6, atLast: 1,
			missing: "lines between " + t0.Add(2).Format(time.RFC3339Nano) + " and " + t0.Add(5).Format(time.RFC3339Nano) + ", at byte 4"},
		{name: "resume seeing only the later lines of the last time marks none", from: archive.LogState{Bytes: 4, LastTime: t0.Add(2), AtLastTime: 2},
			lines: []string{"c\n", "d\n"}, times: at(2, 3), want: "d\n", last: 3, atLast: 1},
		{name: "resume into an empty stream marks none", from: archive.LogState{Bytes: 4, LastTime: t0.Add(2), AtLastTime: 1},
			lines: []string{}, times: at(), want: "", last: 2, atLast: 1},
	}
	for _, tc := range cases {
		for _, piece := range []int{1, 3, 7, 1 << 20} {
			maxLine, maxLog := tc.maxLine, tc.maxLog
			if maxLine == 0 {
				maxLine = 1 << 20
			}
			if maxLog == 0 {
				maxLog = 1 << 30
			}
			f := New(tc.from, maxLine, maxLog)
			in := tc.raw
			if in == "" {
				in = stamped(tc.lines, tc.times)
			}
			got := feedInPieces(f, in, piece)
			if got != tc.want {
				t.Errorf("%s (pieces of %d): stored %q, want %q", tc.name, piece, got, tc.want)
			}
			st := f.State()
			wantLast := time.Time{}
			if tc.last != 0 {
				wantLast = t0.Add(time.Duration(tc.last))
			}
			if !st.LastTime.Equal(wantLast) || st.AtLastTime != tc.atLast || st.Cut != tc.cut {
				t.Errorf("%s (pieces of %d): state last=%v atLast=%d cut=%v, want %v %d %v",
					tc.name, piece, st.LastTime, st.AtLastTime, st.Cut, wantLast, tc.atLast, tc.cut)
			}
			if st.Missing != tc.missing {
				t.Errorf("%s (pieces of %d): missing %q, want %q", tc.name, piece, st.Missing, tc.missing)
			}
			if st.Bytes != tc.from.Bytes+int64(len(tc.want)) {
				t.Errorf("%s: state bytes %d, want %d", tc.name, st.Bytes, tc.from.Bytes+int64(len(tc.want)))
			}
		}
	}
}

func gapMarker(from, to int) string {
	return "[flow-ci: lines printed between " + t0.Add(time.Duration(from)).Format(time.RFC3339Nano) + " and " +
		t0.Add(time.Duration(to)).Format(time.RFC3339Nano) + " may be missing: the kubelet rotated them out of the log it serves while no archive read it]\n"
}

// Gaps are listed in Missing up to a bound; past it, a note says the log's markers
// list the rest.
func TestFilterBoundsMissing(t *testing.T) {
	st := archive.LogState{Bytes: 1, LastTime: t0, AtLastTime: 1}
	for i := range 100 {
		f := New(st, 1<<20, 1<<30)
		out := f.Feed([]byte(stamped([]string{"x\n"}, at(1000*(i+1)))), nil)
		if !strings.HasPrefix(string(out), "[flow-ci: lines printed between") {
			t.Fatalf("resume %d: no marker before %q", i, out)
		}
		st = f.State()
	}
	if len(st.Missing) > maxMissing+len(moreGaps) || !strings.HasSuffix(st.Missing, moreGaps) {
		t.Errorf("missing is %d bytes, ending %q; want at most %d, ending with the note", len(st.Missing), tailOf(st.Missing), maxMissing+len(moreGaps))
	}
}

func tailOf(s string) string { return s[max(0, len(s)-60):] }

// A stream that breaks mid-line and resumes from the saved state stores every line
// exactly once.
func TestFilterResumeAfterABreak(t *testing.T) {
	var lines []string
	for i := range 200 {
		lines = append(lines, strings.Repeat(string(rune('a'+i%26)), i%17)+"\n")
	}
	times := make([]time.Time, len(lines))
	for i := range times {
		times[i] = t0.Add(time.Duration(i/3) * time.Millisecond) // three lines share each time
	}
	stream := stamped(lines, times)
	want := strings.Join(lines, "")
	for _, brk := range []int{1, 50, 333, 1000, len(stream) - 1} {
		f := New(archive.LogState{}, 1<<20, 1<<30)
		stored := string(f.Feed([]byte(stream[:brk]), nil)) // the connection drops here
		// A resumed stream starts from the saved state's second (sinceTime has seconds).
		g := New(f.State(), 1<<20, 1<<30)
		stored += feedInPieces(g, stream, 5)
		if stored != want {
			t.Errorf("break at %d: stored %d bytes, want %d (lost or repeated lines)", brk, len(stored), len(want))
		}
		if g.State().Bytes != int64(len(want)) {
			t.Errorf("break at %d: state says %d bytes, want %d", brk, g.State().Bytes, len(want))
		}
	}
}

// A stream of one 10 MiB line and 1 MiB of binary without newlines holds at most the
// line cap.
func TestFilterBoundsMemory(t *testing.T) {
	f := New(archive.LogState{}, 4096, 1<<30)
	chunk := bytes.Repeat([]byte{0xff}, 64<<10)
	var out []byte
	out = f.Feed([]byte(t0.Format(time.RFC3339Nano)+" "), out)
	for range 160 { // 10 MiB
		out = f.Feed(chunk, out)
		if f.Pending() > 4096 {
			t.Fatalf("the filter holds %d bytes of one line, over its 4096-byte cap", f.Pending())
		}
	}
	out = f.Feed([]byte("\n"), out)
	if len(out) != 4096+len(" [flow-ci: line cut at 4096 bytes]\n") {
		t.Errorf("stored %d bytes for a cut line", len(out))
	}
}
