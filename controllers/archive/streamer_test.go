package archive

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/flow-ci/flow-ci/internal/archive"
	"github.com/flow-ci/flow-ci/internal/archive/ingest"
	"github.com/flow-ci/flow-ci/internal/archive/sqlstore"
)

// printer is a step's output as the kubelet serves it, made as it is read: n lines from
// line(i), each with its timestamp, a line per Read. It counts what was read, so a test
// sees where the archive stopped reading.
type printer struct {
	n, i int
	line func(i int) string
	cur  []byte
	// read is atomic: the streamer's reader may still be in Read when copy returns.
	read atomic.Int64
}

func (p *printer) Read(b []byte) (int, error) {
	if len(p.cur) == 0 {
		if p.i == p.n {
			return 0, io.EOF
		}
		ts := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC).Add(time.Duration(p.i) * time.Microsecond)
		p.cur = []byte(ts.Format(time.RFC3339Nano) + " " + p.line(p.i) + "\n")
		p.i++
	}
	n := copy(b, p.cur)
	p.cur = p.cur[n:]
	p.read.Add(int64(n))
	return n, nil
}

// The streamer's whole path (read loop, filter, store) bounds what a hostile step
// costs: an endless printer is read only up to the log's cap, one 10 MiB line is cut to
// the line cap, binary output is kept byte for byte, and a namespace whose logs fill
// its share stores a marker and nothing more.
func TestStreamerBoundsHostileOutput(t *testing.T) {
	const maxLine, maxLog = 64 << 10, 1 << 20
	binary := string([]byte{0, 0xff, 0xfe, 'a', 0xc3, 0x28, 0x1b, '['})
	for _, c := range []struct {
		name       string
		out        *printer
		nsUsed     int64
		chunk      int // bytes per save; 0: 256 KiB
		readAtMost int64
		check      func(stored string) error
	}{
		{name: "an endless printer stops at the log's cap", out: &printer{n: -1, line: func(i int) string { return fmt.Sprintf("%08d %s", i, strings.Repeat("x", 100)) }},
			readAtMost: 2 * maxLog, check: func(s string) error {
				return expect(len(s) <= maxLog+200 && len(s) >= maxLog-200 && strings.Contains(s[len(s)-200:], "flow-ci"), "about %d bytes and a marker, got %d: %q", maxLog, len(s), tail(s))
			}},
		{name: "a 10 MiB line is cut", out: &printer{n: 2, line: func(i int) string {
			if i == 0 {
				return strings.Repeat("y", 10<<20)
			}
			return "after"
		}}, check: func(s string) error {
			first, rest, _ := strings.Cut(s, "\n")
			return expect(len(first) <= maxLine+100 && strings.HasPrefix(first, "yyyy") && rest == "after\n", "a cut line then the next, got %d bytes then %q", len(first), tail(rest))
		}},
		{name: "binary output is kept as is", out: &printer{n: 3, line: func(int) string { return binary }}, check: func(s string) error {
			return expect(s == strings.Repeat(binary+"\n", 3), "the bytes as printed, got %q", s)
		}},
		{name: "a full namespace stores a marker, once", nsUsed: 10 << 20, chunk: 1, out: &printer{n: 10, line: func(int) string { return "more" }}, check: func(s string) error {
			return expect(strings.Count(s, "the namespace's archive is full") == 1 && !strings.Contains(s, "more"), "the marker only, once, got %q", s)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			store, err := sqlstore.OpenEmbedded(context.Background(), t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			u := &usage{}
			u.set([]archive.Usage{{Namespace: "ns", Stored: c.nsUsed}})
			key := archive.StreamKey{UID: "uid", Namespace: "ns", Stream: "step-0-abcde"}
			s := &streamer{store: store, usage: u, m: NewMetrics(), log: logr.Discard(), src: logSource{key: key},
				limits: Limits{MaxLine: maxLine, MaxLog: maxLog, MaxNamespace: 10 << 20, Chunk: cmp.Or(c.chunk, 256<<10), Flush: time.Second}}
			if err := s.copy(context.Background(), c.out, ingest.New(archive.LogState{}, maxLine, maxLog)); err != nil {
				t.Fatal(err)
			}
			if read := c.out.read.Load(); c.readAtMost > 0 && read > c.readAtMost {
				t.Errorf("read %d bytes of an endless log; want at most %d", read, c.readAtMost)
			}
			var got bytes.Buffer
			r, err := store.OpenLog(context.Background(), key)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(&got, r)
			_ = r.Close()
			if err := c.check(got.String()); err != nil {
				t.Error(err)
			}
		})
	}
}

func expect(ok bool, format string, args ...any) error {
	if ok {
		return nil
	}
	return fmt.Errorf(format, args...)
}

func tail(s string) string { return s[max(0, len(s)-120):] }
