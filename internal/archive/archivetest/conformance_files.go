package archivetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/flow-ci/flow-ci/internal/archive"
)

// Artifacts: the files steps kept.

func testArtifactRoundTrip(t *testing.T, h *harness) {
	binary := make([]byte, 1<<20+1)
	for i := range binary {
		binary[i] = byte(i * 7 % 256) // every byte value, NUL and invalid UTF-8 too
	}
	puts := []struct {
		a    archive.Artifact
		body []byte
	}{
		{newArtifact("team-a", "run-1", 1, "dist/app.tar.gz", 1), binary},
		{newArtifact("team-a", "run-1", 0, "reports/junit.xml", 2), []byte("<testsuite/>\n")},
		{newArtifact("team-a", "run-1", 1, "dist/App.txt", 3), []byte("upper case sorts first\n")},
		{newArtifact("team-a", "run-1", 0, "empty", 4), nil},
		{newArtifact("team-b", "run-2", 0, "reports/junit.xml", 5), []byte("another run's\n")},
	}
	var want []archive.Artifact
	for _, p := range puts {
		got := h.putArtifact(p.a, p.body)
		w := stored(p.a, p.body)
		diff(t, "PutArtifact's artifact", w, got)
		if w.UID == "run-1" {
			want = append(want, w)
		}
	}
	h.reopen()
	// By step, then path byte-wise: "dist/App.txt" before "dist/app.tar.gz".
	diff(t, "Artifacts", []archive.Artifact{want[3], want[1], want[2], want[0]}, h.artifacts("run-1"))
	for _, p := range puts {
		a, body := h.readArtifact(p.a.UID, p.a.Path)
		if !bytes.Equal(body, p.body) {
			t.Errorf("OpenArtifact(%s, %s) read %d bytes, not the %d stored", p.a.UID, p.a.Path, len(body), len(p.body))
		}
		if a.SHA256 != sha256Hex(body) || a.Size != int64(len(body)) {
			t.Errorf("OpenArtifact(%s, %s) = %+v, whose size and sha256 are not what it reads", p.a.UID, p.a.Path, a)
		}
	}
	h.wantNoArtifact("run-1", "dist")
	h.wantNoArtifact("run-none", "empty")
	if got := h.artifacts("run-none"); len(got) != 0 {
		t.Errorf("Artifacts of a run with none = %+v", got)
	}
	h.wantArtifactBytes("team-a", int64(len(binary)+13+23))
	h.wantArtifactBytes("team-b", 14)
	h.wantArtifactBytes("team-c", 0)

	// Without a creation time the store stamps its own.
	before := time.Now()
	a := newArtifact("team-a", "run-3", 0, "now", 0)
	a.Created = time.Time{}
	if got := h.putArtifact(a, []byte("x")); got.Created.Before(before.Add(-time.Second)) || got.Created.After(time.Now().Add(time.Second)) {
		t.Errorf("PutArtifact without Created stamped %s, want about %s", got.Created, before)
	}
}

func testArtifactWrongSize(t *testing.T, h *harness) {
	ctx := t.Context()
	kept := newArtifact("team-a", "run-1", 0, "kept.txt", 0)
	h.putArtifact(kept, []byte("kept"))
	for _, tc := range []struct {
		path string
		size int64
		body string
	}{
		{"short.txt", 10, "only nine"},
		{"long.txt", 3, "more than three"},
		{"empty-but-not.txt", 0, "x"},
		{"kept.txt", 10, "the old one stays"},
	} {
		a := newArtifact("team-a", "run-1", 1, tc.path, 1)
		a.Size = tc.size
		if _, err := h.s.PutArtifact(ctx, a, strings.NewReader(tc.body)); !errors.Is(err, archive.ErrWrongSize) {
			t.Errorf("PutArtifact(%s) of %d bytes as %d = %v, want ErrWrongSize", tc.path, len(tc.body), tc.size, err)
		}
	}
	h.wantNoArtifact("run-1", "short.txt")
	h.wantNoArtifact("run-1", "long.txt")
	if _, body := h.readArtifact("run-1", "kept.txt"); string(body) != "kept" {
		t.Errorf("after a refused replacement the artifact holds %q, want %q", body, "kept")
	}
	diff(t, "Artifacts after refused puts", []archive.Artifact{stored(kept, []byte("kept"))}, h.artifacts("run-1"))
	h.wantArtifactBytes("team-a", 4)
}

// testArtifactReplace stores a path again, as a retried step does.
func testArtifactReplace(t *testing.T, h *harness) {
	first := newArtifact("team-a", "run-1", 2, "out/result.json", 0)
	h.putArtifact(first, []byte(`{"attempt":1}`))
	h.putArtifact(newArtifact("team-a", "run-1", 2, "out/other.json", 1), []byte("{}"))
	second := newArtifact("team-a", "run-1", 2, "out/result.json", 5)
	second.StepName = "test-retried"
	h.putArtifact(second, []byte(`{"attempt":2,"longer":true}`))
	got := h.artifacts("run-1")
	if len(got) != 2 {
		t.Fatalf("Artifacts after replacing one of two = %+v, want two", got)
	}
	diff(t, "the replaced artifact", stored(second, []byte(`{"attempt":2,"longer":true}`)), got[1])
	if _, body := h.readArtifact("run-1", "out/result.json"); string(body) != `{"attempt":2,"longer":true}` {
		t.Errorf("replaced artifact reads %q", body)
	}
	h.wantArtifactBytes("team-a", int64(len(`{"attempt":2,"longer":true}`)+2))
}

// testArtifactsDelete: a run's artifacts go with it; the caches it saved stay.
func testArtifactsDelete(t *testing.T, h *harness) {
	h.put(newRecord("team-a", "build", "run-1", 0))
	h.appendAll(streamKey("team-a", "run-1", "step-0"), "building\n")
	h.putArtifact(newArtifact("team-a", "run-1", 0, "a.txt", 0), []byte("a"))
	h.putArtifact(newArtifact("team-a", "run-1", 0, "b.txt", 0), []byte("bb"))
	h.putArtifact(newArtifact("team-a", "run-2", 0, "a.txt", 0), []byte("run 2"))
	// A run that left only artifacts.
	h.putArtifact(newArtifact("team-a", "run-3", 0, "a.txt", 0), []byte("run 3"))
	c := h.putCache(newCache("team-a", "run-1", "main", "deps-1", 0), "cache of run 1")
	h.finishCaches("run-1", true, 1)

	for _, uid := range []string{"run-1", "run-3"} {
		if err := h.s.Delete(t.Context(), uid); err != nil {
			t.Fatalf("Delete(%s): %v", uid, err)
		}
		if got := h.artifacts(uid); len(got) != 0 {
			t.Errorf("Artifacts of deleted %s = %+v", uid, got)
		}
		h.wantNoArtifact(uid, "a.txt")
	}
	if _, body := h.readArtifact("run-2", "a.txt"); string(body) != "run 2" {
		t.Errorf("another run's artifact after Delete reads %q", body)
	}
	h.wantArtifactBytes("team-a", 5)
	if got := h.findCache(cacheQuery("team-a", "deps-1", nil, "main")); got.ID != c.ID {
		t.Errorf("the deleted run's cache: FindCache = %+v, want %s", got, c.ID)
	}
	// The same path under the deleted run's UID starts afresh.
	h.putArtifact(newArtifact("team-a", "run-1", 0, "a.txt", 0), []byte("again"))
	if _, body := h.readArtifact("run-1", "a.txt"); string(body) != "again" {
		t.Errorf("artifact stored after Delete reads %q", body)
	}
}

func testArtifactInvalidInput(t *testing.T, h *harness) {
	ctx := t.Context()
	put := func(edit func(*archive.Artifact)) error {
		a := newArtifact("team-a", "run-1", 0, "a.txt", 0)
		edit(&a)
		_, err := h.s.PutArtifact(ctx, a, strings.NewReader("a"))
		return err
	}
	for name, call := range map[string]func() error{
		"without a UID":         func() error { return put(func(a *archive.Artifact) { a.UID = "" }) },
		"UID with a path":       func() error { return put(func(a *archive.Artifact) { a.UID = "../x" }) },
		"without a namespace":   func() error { return put(func(a *archive.Artifact) { a.Namespace = "" }) },
		"namespace Upper":       func() error { return put(func(a *archive.Artifact) { a.Namespace = "Team" }) },
		"without a run name":    func() error { return put(func(a *archive.Artifact) { a.Run = "" }) },
		"negative step":         func() error { return put(func(a *archive.Artifact) { a.Step = -1 }) },
		"without a path":        func() error { return put(func(a *archive.Artifact) { a.Path = "" }) },
		"path with NUL":         func() error { return put(func(a *archive.Artifact) { a.Path = "a\x00b" }) },
		"negative size":         func() error { return put(func(a *archive.Artifact) { a.Size = -1 }) },
		"Artifacts without UID": func() error { _, err := h.s.Artifacts(ctx, ""); return err },
		"OpenArtifact without a path": func() error {
			_, _, err := h.s.OpenArtifact(ctx, "run-1", "")
			return err
		},
		"ArtifactBytes of no namespace": func() error { _, err := h.s.ArtifactBytes(ctx, ""); return err },
	} {
		if err := call(); err == nil || errors.Is(err, archive.ErrNotFound) {
			t.Errorf("%s: %v, want an error saying what is wrong", name, err)
		}
	}
	h.wantArtifactBytes("team-a", 0)
}

// newArtifact is an artifact of run uid (named "build") created at epoch+minutes,
// its Size that of a 1-byte body (putArtifact sets it to the body's).
func newArtifact(ns, uid string, step int, path string, minutes int) archive.Artifact {
	return archive.Artifact{
		UID: uid, Namespace: ns, Run: "build", Step: step, StepName: "step-" + string(rune('a'+step)),
		Path: path, Size: 1, Created: epoch.Add(time.Duration(minutes) * time.Minute),
	}
}

// stored is a as the store keeps it with body.
func stored(a archive.Artifact, body []byte) archive.Artifact {
	a.Size, a.SHA256 = int64(len(body)), sha256Hex(body)
	return a
}

// putArtifact stores body as a, its Size set to the body's length.
func (h *harness) putArtifact(a archive.Artifact, body []byte) archive.Artifact {
	h.t.Helper()
	a.Size = int64(len(body))
	got, err := h.s.PutArtifact(h.t.Context(), a, bytes.NewReader(body))
	if err != nil {
		h.t.Fatalf("PutArtifact(%s, %s): %v", a.UID, a.Path, err)
	}
	return got
}

func (h *harness) artifacts(uid string) []archive.Artifact {
	h.t.Helper()
	got, err := h.s.Artifacts(h.t.Context(), uid)
	if err != nil {
		h.t.Fatalf("Artifacts(%s): %v", uid, err)
	}
	return got
}

func (h *harness) readArtifact(uid, path string) (archive.Artifact, []byte) {
	h.t.Helper()
	r, a, err := h.s.OpenArtifact(h.t.Context(), uid, path)
	if err != nil {
		h.t.Fatalf("OpenArtifact(%s, %s): %v", uid, path, err)
	}
	defer r.Close()
	body, err := io.ReadAll(r)
	if err != nil {
		h.t.Fatalf("read artifact %s %s: %v", uid, path, err)
	}
	return a, body
}

func (h *harness) wantNoArtifact(uid, path string) {
	h.t.Helper()
	r, _, err := h.s.OpenArtifact(h.t.Context(), uid, path)
	if !errors.Is(err, archive.ErrNotFound) {
		if err == nil {
			_ = r.Close()
		}
		h.t.Errorf("OpenArtifact(%s, %s) = %v, want ErrNotFound", uid, path, err)
	}
}

func (h *harness) wantArtifactBytes(ns string, want int64) {
	h.t.Helper()
	got, err := h.s.ArtifactBytes(h.t.Context(), ns)
	if err != nil || got != want {
		h.t.Errorf("ArtifactBytes(%s) = %d, %v; want %d", ns, got, err, want)
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
