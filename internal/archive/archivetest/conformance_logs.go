package archivetest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/flow-ci/flow-ci/internal/archive"
)

func testAppendExact(t *testing.T, h *harness) {
	k := streamKey("team-a", "run-1", "step-0")
	chunks := []string{
		"hello, ",
		"\x00\x01\xff\xfe binary\r\n",
		"\xc3\x28 invalid \xed\xa0\x80 UTF-8\n",
		"",
		"a last line without a newline",
	}
	h.appendAll(k, chunks...)
	want := strings.Join(chunks, "")
	if got := h.readLog(k); got != want {
		t.Errorf("log = %q, want %q", got, want)
	}
	r, err := h.s.OpenLog(t.Context(), k)
	if err != nil {
		t.Fatalf("OpenLog: %v", err)
	}
	defer r.Close()
	// Reads of every size, and EOF at the end and after it.
	if err := iotest.TestReader(r, []byte(want)); err != nil {
		t.Errorf("the log's reader: %v", err)
	}
}

func testEmptyChunk(t *testing.T, h *harness) {
	first := streamKey("team-a", "run-1", "clone")
	next := archive.LogState{Done: true, Missing: "everything: the pod was gone"}
	h.append(first, "", next)
	diff(t, "state after an empty first Append", next, h.state(first))
	if got := h.readLog(first); got != "" {
		t.Errorf("log after an empty first Append = %q, want it empty", got)
	}

	k := streamKey("team-a", "run-1", "step-0")
	h.append(k, "abc\n", archive.LogState{LastTime: epoch, AtLastTime: 1})
	before := h.state(k)
	next = archive.LogState{LastTime: epoch.Add(time.Second), AtLastTime: 3, Done: true, Missing: "x", Cut: true}
	h.append(k, "", next)
	want := next
	want.Bytes, want.Stored, want.Chunks = before.Bytes, before.Stored, before.Chunks
	diff(t, "state after an empty Append", want, h.state(k))
	if got := h.readLog(k); got != "abc\n" {
		t.Errorf("log after an empty Append = %q, want %q", got, "abc\n")
	}
}

// A log saved Done is final: a late Append (a stream's last save, after the log was
// finished with what is missing) is refused and changes neither its state nor its bytes.
func testCompleteIsFinal(t *testing.T, h *harness) {
	k := streamKey("team-a", "run-1", "step-0")
	h.append(k, "abc\n", archive.LogState{LastTime: epoch, AtLastTime: 1})
	h.append(k, "", archive.LogState{LastTime: epoch, AtLastTime: 1, Done: true, Missing: "everything after byte 4: given up"})
	done := h.state(k)
	_, err := h.s.Append(t.Context(), k, []byte("late\n"), archive.LogState{LastTime: epoch.Add(time.Second), AtLastTime: 1})
	if !errors.Is(err, archive.ErrComplete) {
		t.Errorf("Append to a complete log: %v, want ErrComplete", err)
	}
	diff(t, "state after a refused Append", done, h.state(k))
	if got := h.readLog(k); got != "abc\n" {
		t.Errorf("log after a refused Append = %q, want %q", got, "abc\n")
	}
}

func testLargeLog(t *testing.T, h *harness) {
	const size = 5 << 20
	k := streamKey("team-a", "run-1", "step-0")
	rng := rand.New(rand.NewPCG(1, 2))
	sum := sha256.New()
	chunks := 0
	for written := 0; written < size; {
		chunk := logBytes(rng, min(1+rng.IntN(256<<10), size-written))
		sum.Write(chunk)
		if _, err := h.s.Append(t.Context(), k, chunk, archive.LogState{}); err != nil {
			t.Fatalf("Append: %v", err)
		}
		written += len(chunk)
		chunks++
	}
	want := fmt.Sprintf("%x", sum.Sum(nil))
	st := h.state(k)
	if st.Bytes != size || st.Chunks != chunks {
		t.Errorf("state counts %d bytes in %d chunks, want %d in %d", st.Bytes, st.Chunks, size, chunks)
	}
	r, err := h.s.OpenLog(t.Context(), k)
	if err != nil {
		t.Fatalf("OpenLog: %v", err)
	}
	defer r.Close()
	got := sha256.New()
	n, err := io.CopyBuffer(got, r, make([]byte, 997))
	if err != nil {
		t.Fatalf("read the log: %v", err)
	}
	if n != size || fmt.Sprintf("%x", got.Sum(nil)) != want {
		t.Errorf("read %d bytes with sha256 %x, want %d with %s", n, got.Sum(nil), size, want)
	}
}

// logBytes is n bytes of a log: text lines, with a random binary stretch now and then
// so that neither compression nor a text-only path hides a mistake.
func logBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, 0, n)
	for len(b) < n {
		if rng.IntN(8) == 0 {
			for range min(rng.IntN(4096), n-len(b)) {
				b = append(b, byte(rng.Uint32()))
			}
			continue
		}
		line := fmt.Sprintf("%08d step output %x\n", len(b), rng.Uint64())
		b = append(b, line[:min(len(line), n-len(b))]...)
	}
	return b
}

func testStateRoundTrip(t *testing.T, h *harness) {
	k := streamKey("team-a", "run-1", "step-0")
	if st, ok, err := h.s.State(t.Context(), k); ok || err != nil {
		t.Fatalf("State before any Append = %+v, ok %v, %v; want none", st, ok, err)
	}
	next := archive.LogState{
		LastTime:   time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.FixedZone("CET", 3600)),
		AtLastTime: 7,
		Done:       true,
		Missing:    "lines after 03:04:05: the node was drained",
		Cut:        true,
	}
	h.append(k, "line\n", next)
	got := h.state(k)
	want := next
	want.Bytes, want.Chunks = 5, 1
	want.Stored = got.Stored // the store's to choose; testStoreCounts checks it
	diff(t, "state", want, got)

	zero := streamKey("team-a", "run-1", "step-1")
	h.append(zero, "x", archive.LogState{})
	diff(t, "state of zero fields", archive.LogState{Bytes: 1, Chunks: 1, Stored: h.state(zero).Stored}, h.state(zero))
}

// testStoreCounts checks the fields the store owns: whatever the caller passes, Chunks
// counts non-empty Appends, Bytes their lengths, and Stored grows with each.
func testStoreCounts(t *testing.T, h *harness) {
	k := streamKey("team-a", "run-1", "step-0")
	var bytes int64
	var chunks int
	var stored int64
	for i, n := range []int{1, 10, 0, 1000, 3, 0, 70000, 2} {
		chunk := strings.Repeat(string(rune('a'+i)), n)
		h.append(k, chunk, archive.LogState{Bytes: 999999, Stored: -5, Chunks: 42})
		bytes += int64(n)
		if n > 0 {
			chunks++
		}
		st := h.state(k)
		if st.Bytes != bytes || st.Chunks != chunks {
			t.Errorf("after Append %d: %d bytes in %d chunks, want %d in %d", i, st.Bytes, st.Chunks, bytes, chunks)
		}
		switch {
		case n > 0 && st.Stored <= stored:
			t.Errorf("after Append %d of %d bytes: Stored %d, not more than %d before", i, n, st.Stored, stored)
		case n == 0 && st.Stored != stored:
			t.Errorf("after an empty Append %d: Stored %d, want it unchanged at %d", i, st.Stored, stored)
		}
		stored = st.Stored
	}
}

func testStreams(t *testing.T, h *harness) {
	h.appendAll(streamKey("team-a", "run-1", "step-1"), "b")
	h.appendAll(streamKey("team-a", "run-1", "clone"), "cloning\n")
	h.appendAll(streamKey("team-a", "run-1", "step-0"), "a", "aa")
	h.appendAll(streamKey("team-a", "run-2", "clone"), "another run")
	got, err := h.s.Streams(t.Context(), "run-1")
	if err != nil {
		t.Fatalf("Streams: %v", err)
	}
	var want []archive.Stream
	for _, name := range []string{"clone", "step-0", "step-1"} {
		want = append(want, archive.Stream{Stream: name, State: h.state(streamKey("team-a", "run-1", name))})
	}
	diff(t, "Streams", want, got)
	if got, err := h.s.Streams(t.Context(), "run-none"); len(got) != 0 || err != nil {
		t.Errorf("Streams of an unknown run = %v, %v; want none", got, err)
	}
}

func testNamespaceConfines(t *testing.T, h *harness) {
	k := streamKey("team-a", "run-1", "clone")
	h.appendAll(k, "team a's log")
	h.wantNoLog(streamKey("team-b", "run-1", "clone"))
	anyNS := streamKey("", "run-1", "clone")
	diff(t, "state in any namespace", h.state(k), h.state(anyNS))
	if got := h.readLog(anyNS); got != "team a's log" {
		t.Errorf("log in any namespace = %q", got)
	}
	before := h.state(k)
	_, err := h.s.Append(t.Context(), streamKey("team-b", "run-1", "clone"), []byte("b"), archive.LogState{})
	if err == nil {
		t.Errorf("Append to a log under another namespace succeeded")
	}
	diff(t, "state after a refused Append", before, h.state(k))
	if got := h.readLog(k); got != "team a's log" {
		t.Errorf("log after a refused Append = %q", got)
	}
}

func testConcurrentStreams(t *testing.T, h *harness) {
	const writers, appends = 20, 25
	keys := make([]archive.StreamKey, writers)
	want := make([]string, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		run := i % 5
		keys[i] = streamKey(fmt.Sprintf("team-%d", run%2), fmt.Sprintf("run-%d", run), fmt.Sprintf("step-%d", i))
		wg.Go(func() {
			var b strings.Builder
			for j := range appends {
				chunk := fmt.Sprintf("writer %d append %d %s\n", i, j, strings.Repeat("x", (i*j)%300))
				if _, errs[i] = h.s.Append(t.Context(), keys[i], []byte(chunk), archive.LogState{}); errs[i] != nil {
					return
				}
				b.WriteString(chunk)
			}
			want[i] = b.String()
		})
	}
	wg.Wait()
	for i, k := range keys {
		if errs[i] != nil {
			t.Errorf("writer %d: %v", i, errs[i])
			continue
		}
		if got := h.readLog(k); got != want[i] {
			t.Errorf("log of writer %d: %d bytes, want %d:\n%.200q", i, len(got), len(want[i]), got)
		}
		if st := h.state(k); st.Chunks != appends || st.Bytes != int64(len(want[i])) {
			t.Errorf("state of writer %d: %d bytes in %d chunks, want %d in %d",
				i, st.Bytes, st.Chunks, len(want[i]), appends)
		}
	}
}

func testReopen(t *testing.T, h *harness) {
	k := streamKey("team-a", "run-1", "step-0")
	h.appendAll(k, "before the restart\n", "second\n")
	k2 := streamKey("team-a", "run-1", "step-1")
	h.append(k2, "x", archive.LogState{LastTime: epoch, AtLastTime: 2, Done: true, Missing: "m", Cut: true})
	r := newRecord("team-a", "build", "run-1", 0)
	h.put(r)
	st, st2 := h.state(k), h.state(k2)

	h.reopen()
	diff(t, "state after reopening", st, h.state(k))
	diff(t, "state of a second stream after reopening", st2, h.state(k2))
	got, err := h.s.RecordByUID(t.Context(), "run-1")
	if err != nil {
		t.Fatalf("RecordByUID after reopening: %v", err)
	}
	diff(t, "record after reopening", r, got)
	h.appendAll(k, "after the restart\n")
	if got := h.readLog(k); got != "before the restart\nsecond\nafter the restart\n" {
		t.Errorf("log appended to across a restart = %q", got)
	}
	if st := h.state(k); st.Chunks != 3 {
		t.Errorf("chunks after appending across a restart = %d, want 3", st.Chunks)
	}
}
