package sqlstore

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flow-ci/flow-ci/internal/archive"
	"github.com/flow-ci/flow-ci/internal/archive/archivetest"
	"github.com/flow-ci/flow-ci/internal/archive/blob"
)

func TestConformanceEmbedded(t *testing.T) {
	archivetest.Conformance(t, func(t *testing.T) func() archive.Store {
		dir := t.TempDir()
		return func() archive.Store { return openEmbedded(t, dir) }
	})
}

func openEmbedded(t *testing.T, dir string) archive.Store {
	t.Helper()
	s, err := OpenEmbedded(t.Context(), dir)
	if err != nil {
		t.Fatalf("OpenEmbedded: %v", err)
	}
	return s
}

// closeStore closes s when t ends.
func closeStore(t *testing.T, s archive.Store) {
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

func readAll(t *testing.T, s archive.Store, k archive.StreamKey) (string, error) {
	t.Helper()
	r, err := s.OpenLog(t.Context(), k)
	if err != nil {
		return "", err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	return string(b), err
}

// A chunk stored before a crash that came before its state was saved is not part of
// the log, and the next Append overwrites it.
func TestAppendOverwritesUncountedChunk(t *testing.T) {
	dir := t.TempDir()
	s := openEmbedded(t, dir)
	closeStore(t, s)
	k := archive.StreamKey{Namespace: "team-a", UID: "run-1", Stream: "step-0"}
	if _, err := s.Append(t.Context(), k, []byte("one\n"), archive.LogState{}); err != nil {
		t.Fatal(err)
	}
	files, err := blob.Files(filepath.Join(dir, "logs"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		gz, err := compress([]byte("never counted\n"))
		if err != nil {
			t.Fatal(err)
		}
		if err := files.Put(t.Context(), chunkKey("team-a", "run-1", "step-0", i), gz); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := readAll(t, s, k); got != "one\n" || err != nil {
		t.Errorf("log with uncounted chunks after it = %q, %v; want %q", got, err, "one\n")
	}
	if _, err := s.Append(t.Context(), k, []byte("two\n"), archive.LogState{}); err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(t, s, k); got != "one\ntwo\n" || err != nil {
		t.Errorf("log after the next Append = %q, %v; want %q", got, err, "one\ntwo\n")
	}
}

// failingBlobs is a real blob store whose Put fails while fail is set.
type failingBlobs struct {
	blob.Blobs
	fail bool
}

func (f *failingBlobs) Put(ctx context.Context, key string, data []byte) error {
	if f.fail {
		return errors.New("disk full")
	}
	return f.Blobs.Put(ctx, key, data)
}

func TestAppendWhosePutFailsSavesNothing(t *testing.T) {
	dir := t.TempDir()
	files, err := blob.Files(filepath.Join(dir, "logs"))
	if err != nil {
		t.Fatal(err)
	}
	blobs := &failingBlobs{Blobs: files}
	s, err := Open(t.Context(), "sqlite", filepath.Join(dir, "archive.db")+sqliteOptions, blobs)
	if err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)
	k := archive.StreamKey{Namespace: "team-a", UID: "run-1", Stream: "step-0"}
	if _, err := s.Append(t.Context(), k, []byte("one\n"), archive.LogState{}); err != nil {
		t.Fatal(err)
	}
	before, _, _ := s.State(t.Context(), k)
	blobs.fail = true
	_, err = s.Append(t.Context(), k, []byte("lost\n"), archive.LogState{Done: true})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Append with a failing Put = %v, want the Put's error", err)
	}
	if after, _, _ := s.State(t.Context(), k); after != before {
		t.Errorf("state after a failed Append = %+v, want it unchanged at %+v", after, before)
	}
	blobs.fail = false
	if _, err := s.Append(t.Context(), k, []byte("two\n"), archive.LogState{}); err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(t, s, k); got != "one\ntwo\n" || err != nil {
		t.Errorf("log = %q, %v; want %q", got, err, "one\ntwo\n")
	}
}

func TestOpenLogWithAMissingChunk(t *testing.T) {
	dir := t.TempDir()
	s := openEmbedded(t, dir)
	closeStore(t, s)
	k := archive.StreamKey{Namespace: "team-a", UID: "run-1", Stream: "clone"}
	for _, c := range []string{"one\n", "two\n"} {
		if _, err := s.Append(t.Context(), k, []byte(c), archive.LogState{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(dir, "logs", "team-a", "run-1", "clone", "00000001.gz")); err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, s, k)
	if err == nil || errors.Is(err, archive.ErrNotFound) || !strings.Contains(err.Error(), "chunk 1 is missing") {
		t.Errorf("read of a log missing a chunk = %q, %v; want an error naming the chunk", got, err)
	}
}

func TestDeleteRemovesChunkFiles(t *testing.T) {
	dir := t.TempDir()
	s := openEmbedded(t, dir)
	closeStore(t, s)
	for _, uid := range []string{"run-1", "run-10"} {
		k := archive.StreamKey{Namespace: "team-a", UID: uid, Stream: "clone"}
		if _, err := s.Append(t.Context(), k, []byte("x"), archive.LogState{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(t.Context(), "run-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "logs", "team-a", "run-1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the deleted run's chunks are still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "logs", "team-a", "run-10", "clone", "00000000.gz")); err != nil {
		t.Errorf("another run's chunk: %v", err)
	}
}

// A second writer of one log, which the archive never runs, is refused rather than
// counting a chunk twice.
func TestSaveStateRefusesAStaleChunkCount(t *testing.T) {
	s := openEmbedded(t, t.TempDir())
	closeStore(t, s)
	k := archive.StreamKey{Namespace: "team-a", UID: "run-1", Stream: "clone"}
	if _, err := s.Append(t.Context(), k, []byte("x"), archive.LogState{}); err != nil {
		t.Fatal(err)
	}
	err := s.(*store).saveState(t.Context(), k, 0, archive.LogState{Chunks: 1, Bytes: 1})
	if err == nil || !strings.Contains(err.Error(), "another writer") {
		t.Errorf("saveState with a stale count = %v, want a refusal", err)
	}
}

func TestOpenEmbeddedRefusesAQuestionMark(t *testing.T) {
	if _, err := OpenEmbedded(t.Context(), filepath.Join(t.TempDir(), "a?b")); err == nil {
		t.Error("OpenEmbedded of a directory with a ? succeeded")
	}
}

// A chunk replaced behind the store's back, shorter or longer, makes the read fail
// rather than return a log that disagrees with its state.
func TestOpenLogWithAChunkOfTheWrongSize(t *testing.T) {
	for _, replacement := range []string{"on", "one and more\n"} {
		dir := t.TempDir()
		s := openEmbedded(t, dir)
		closeStore(t, s)
		k := archive.StreamKey{Namespace: "team-a", UID: "run-1", Stream: "clone"}
		for _, c := range []string{"one\n", "two\n"} {
			if _, err := s.Append(t.Context(), k, []byte(c), archive.LogState{}); err != nil {
				t.Fatal(err)
			}
		}
		files, err := blob.Files(filepath.Join(dir, "logs"))
		if err != nil {
			t.Fatal(err)
		}
		gz, err := compress([]byte(replacement))
		if err != nil {
			t.Fatal(err)
		}
		if err := files.Put(t.Context(), chunkKey("team-a", "run-1", "clone", 1), gz); err != nil {
			t.Fatal(err)
		}
		if got, err := readAll(t, s, k); err == nil || !strings.Contains(err.Error(), "state counts") {
			t.Errorf("read with chunk 1 replaced by %q = %q, %v; want an error", replacement, got, err)
		}
	}
}
