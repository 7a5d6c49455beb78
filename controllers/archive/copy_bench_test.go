package archive

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/flow-ci/flow-ci/internal/archive"
	"github.com/flow-ci/flow-ci/internal/archive/ingest"
	"github.com/flow-ci/flow-ci/internal/archive/sqlstore"
)

// lineReader returns one line per Read, as a followed log arrives: the kubelet flushes
// each line it reads, and the API server passes each on as it comes.
type lineReader struct{ p []byte }

func (r *lineReader) Read(b []byte) (int, error) {
	if len(r.p) == 0 {
		return 0, io.EOF
	}
	n := bytes.IndexByte(r.p, '\n') + 1
	if n == 0 {
		n = len(r.p)
	}
	n = copy(b, r.p[:n])
	r.p = r.p[n:]
	return n, nil
}

// BenchmarkCopy is the archive's own work per MiB of a followed log: one line per read
// through the streamer's copy loop and filter into the embedded store, in 256 KiB
// chunks. What the stream itself costs (TLS, HTTP/2, the API server) is not in it; the
// cluster benchmark measures the whole (docs/performance.md).
func BenchmarkCopy(b *testing.B) {
	var in bytes.Buffer
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for i := 0; in.Len() < 4<<20; i++ {
		fmt.Fprintf(&in, "%s %08d abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdef\n",
			t0.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano), i)
	}
	store, err := sqlstore.OpenEmbedded(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	b.SetBytes(int64(in.Len()))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s := &streamer{store: store, limits: Limits{MaxLine: 256 << 10, MaxLog: 1 << 30, MaxNamespace: 1 << 40, Chunk: 256 << 10, Flush: time.Second},
			usage: &usage{}, m: NewMetrics(), log: logr.Discard(),
			src: logSource{key: archive.StreamKey{UID: fmt.Sprintf("uid-%d", i), Namespace: "ns", Stream: "step-0-abcde"}}}
		if err := s.copy(context.Background(), &lineReader{p: in.Bytes()}, ingest.New(archive.LogState{}, 256<<10, 1<<30)); err != nil {
			b.Fatal(err)
		}
	}
}
