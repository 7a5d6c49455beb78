package blob_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/flow-ci/flow-ci/internal/archive"
	"github.com/flow-ci/flow-ci/internal/archive/blob"
)

const mib = 1 << 20

// partSize is the S3 backend's multipart part size (streamPartSize): sizes around its
// multiples take its multipart paths.
const partSize = 16 * mib

func TestFilesPutStream(t *testing.T) {
	dir := t.TempDir()
	b, err := blob.Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	// io.Copy's 32 KiB buffer, the temporary file and the checks, and garbage the GC
	// has not collected yet.
	testPutStream(t, b, 8*mib)
	// Every refused body removed its temporary file; only the keys stored are left.
	var left []string
	err = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			left = append(left, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range left {
		if filepath.Base(name)[0] == '.' {
			t.Errorf("a temporary file is left: %s", name)
		}
	}
}

// testPutStream is what every Blobs' PutStream does; maxHeap bounds how far storing a
// 128 MiB stream may grow the heap.
func testPutStream(t *testing.T, b blob.Blobs, maxHeap uint64) {
	ctx := t.Context()
	// 0 and 1; several parts with a short last one; exactly two parts, where the last
	// part fills minio-go's buffer (an error that comes with its last bytes is dropped).
	sizes := []int64{0, 1, 100 << 10, 2*partSize + 5, 2 * partSize}
	t.Run("round trip", func(t *testing.T) {
		for i, size := range sizes {
			key := fmt.Sprintf("stream/ok/%d", i)
			if err := b.PutStream(ctx, key, stream(uint64(i), size), size); err != nil {
				t.Fatalf("PutStream of %d bytes: %v", size, err)
			}
			if got, want := sumOf(t, b, key), sum(stream(uint64(i), size)); got != want {
				t.Errorf("%d bytes read back as sha256 %s, want %s", size, got, want)
			}
		}
	})
	t.Run("wrong size keeps the old value", func(t *testing.T) {
		for i, size := range sizes {
			key := fmt.Sprintf("stream/wrong/%d", i)
			if err := b.Put(ctx, key, []byte("old")); err != nil {
				t.Fatal(err)
			}
			for _, body := range []int64{size - 1, size + 1, size + partSize} {
				if body < 0 {
					continue
				}
				err := b.PutStream(ctx, key, stream(7, body), size)
				if !errors.Is(err, archive.ErrWrongSize) {
					t.Errorf("PutStream of %d bytes as %d = %v, want ErrWrongSize", body, size, err)
				}
				if got := read(t, b, key); got != "old" {
					t.Errorf("after a refused PutStream of %d bytes as %d the key holds %d bytes, want the old value",
						body, size, len(got))
				}
			}
			if err := b.PutStream(ctx, fmt.Sprintf("stream/absent/%d", i), stream(7, size+1), size); err == nil {
				t.Errorf("PutStream of %d bytes as %d succeeded", size+1, size)
			}
			if _, err := b.Get(ctx, fmt.Sprintf("stream/absent/%d", i)); !errors.Is(err, archive.ErrNotFound) {
				t.Errorf("a refused PutStream of a new key left it: Get = %v, want ErrNotFound", err)
			}
		}
	})
	t.Run("refused arguments", func(t *testing.T) {
		if err := b.PutStream(ctx, "stream/neg", stream(1, 0), -1); err == nil {
			t.Error("PutStream of size -1 succeeded")
		}
		if err := b.PutStream(ctx, "../x", stream(1, 1), 1); err == nil {
			t.Error(`PutStream("../x") succeeded`)
		}
	})
	t.Run("memory stays bounded", func(t *testing.T) {
		const size = 8*partSize + 3
		peak := peakHeap(t, func() {
			if err := b.PutStream(ctx, "stream/big", stream(3, size), size); err != nil {
				t.Fatal(err)
			}
		})
		if peak > maxHeap {
			t.Errorf("storing %d MiB grew the heap by %.1f MiB, more than %.1f", size/mib, float64(peak)/mib, float64(maxHeap)/mib)
		} else {
			t.Logf("storing %d MiB grew the heap by %.1f MiB", size/mib, float64(peak)/mib)
		}
	})
}

// peakHeap is how far the heap (live and not yet collected objects) grew above where
// it was while f ran, sampled every millisecond.
func peakHeap(t *testing.T, f func()) uint64 {
	t.Helper()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	heap := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	runtime.GC()
	base := heap()
	var peak uint64
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, heap())
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(stop)
	<-stopped
	peak = max(peak, heap())
	if peak < base {
		return 0
	}
	return peak - base
}

// stream is size pseudo-random bytes, the same for the same seed, made as they are
// read (holding none of them).
func stream(seed uint64, size int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}), size)
}

func sum(r io.Reader) string {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		panic(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func sumOf(t *testing.T, b blob.Blobs, key string) string {
	t.Helper()
	r, err := b.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer r.Close()
	return sum(r)
}
