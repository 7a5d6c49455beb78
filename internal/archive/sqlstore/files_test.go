package sqlstore

import (
	"database/sql"
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flow-ci/flow-ci/internal/archive"
)

// The embedded store's blobs of artifacts and caches, as files: what the Store
// interface cannot show.

// blobFiles lists the files under dir/logs/sub, relative to it ("" when none).
func blobFiles(t *testing.T, dir, sub string) []string {
	t.Helper()
	root := filepath.Join(dir, "logs", sub)
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, path)
			out = append(out, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func artifact(uid, path string, size int64) archive.Artifact {
	return archive.Artifact{UID: uid, Namespace: "team-a", Run: "build", StepName: "test", Path: path, Size: size}
}

func cacheEntry(runUID, key string, size int64) archive.CacheEntry {
	return archive.CacheEntry{Namespace: "team-a", RepoURL: "https://git.example.com/app.git", Branch: "main",
		Name: "deps", Key: key, RunUID: runUID, Size: size}
}

// Artifacts' files: one per artifact, the replaced one's deleted, none for a refused
// body, all gone with the run.
func TestArtifactFiles(t *testing.T) {
	dir := t.TempDir()
	s := openEmbedded(t, dir)
	closeStore(t, s)
	ctx := t.Context()
	put := func(a archive.Artifact, body string) error {
		_, err := s.PutArtifact(ctx, a, strings.NewReader(body))
		return err
	}
	for _, body := range []string{"first", "second", "third"} {
		if err := put(artifact("run-1", "../../etc/passwd", int64(len(body))), body); err != nil {
			t.Fatal(err)
		}
	}
	if err := put(artifact("run-1", "short", 10), "short"); !errors.Is(err, archive.ErrWrongSize) {
		t.Fatalf("PutArtifact of a short body = %v, want ErrWrongSize", err)
	}
	files := blobFiles(t, dir, "_artifacts")
	if len(files) != 1 || !strings.HasPrefix(files[0], "team-a/run-1/") || len(files[0]) != len("team-a/run-1/")+idLen {
		t.Fatalf("artifact files = %q, want one named by an ID under team-a/run-1/", files)
	}
	if err := s.Delete(ctx, "run-1"); err != nil {
		t.Fatal(err)
	}
	if files := blobFiles(t, dir, "_artifacts"); len(files) != 0 {
		t.Errorf("artifact files after Delete = %q", files)
	}
}

// A blob whose row could not be written is deleted.
func TestBlobOfAFailedRowWriteIsDeleted(t *testing.T) {
	dir := t.TempDir()
	s := openEmbedded(t, dir)
	closeStore(t, s)
	db, err := sql.Open("sqlite", filepath.Join(dir, "archive.db")+sqliteOptions)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{"DROP TABLE archive_artifacts", "DROP TABLE archive_caches"} {
		if _, err := db.ExecContext(t.Context(), stmt); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.PutArtifact(t.Context(), artifact("run-1", "a", 1), strings.NewReader("a")); err == nil {
		t.Error("PutArtifact without its table succeeded")
	}
	if _, err := s.PutCache(t.Context(), cacheEntry("run-1", "k", 1), strings.NewReader("a")); err == nil {
		t.Error("PutCache without its table succeeded")
	}
	for _, sub := range []string{"_artifacts", "_caches"} {
		if files := blobFiles(t, dir, sub); len(files) != 0 {
			t.Errorf("files left under %s: %q", sub, files)
		}
	}
}

// Caches' files: a superseded, dropped or evicted entry's file is deleted; one a crash
// left deleting is unfindable, and expiry deletes it.
func TestCacheFiles(t *testing.T) {
	dir := t.TempDir()
	s := openEmbedded(t, dir)
	closeStore(t, s)
	ctx := t.Context()
	put := func(runUID, key string) archive.CacheEntry {
		e, err := s.PutCache(ctx, cacheEntry(runUID, key, 4), strings.NewReader("data"))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	finish := func(runUID string, commit bool) {
		if _, err := s.FinishCaches(ctx, runUID, commit); err != nil {
			t.Fatal(err)
		}
	}
	wantFiles := func(why string, entries ...archive.CacheEntry) {
		t.Helper()
		var want []string
		for _, e := range entries {
			want = append(want, "team-a/"+e.ID)
		}
		slices.Sort(want)
		got := blobFiles(t, dir, "_caches")
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: cache files %q, want %q", why, got, want)
		}
	}
	put("run-1", "k1")
	finish("run-1", true)
	k1 := put("run-2", "k1")
	finish("run-2", true)
	wantFiles("after a commit superseded an entry", k1)
	put("run-3", "k2")
	finish("run-3", false)
	wantFiles("after a run finished without commit", k1)
	if _, _, err := s.EvictCaches(ctx, "team-a", 0); err != nil {
		t.Fatal(err)
	}
	wantFiles("after eviction")

	// A crash between marking an entry deleting and deleting its file.
	k3 := put("run-4", "k3")
	finish("run-4", true)
	if _, err := moveCache(ctx, s.(*store).db, k3.ID, cacheCommitted, cacheDeleting); err != nil {
		t.Fatal(err)
	}
	q := archive.CacheQuery{Namespace: "team-a", RepoURL: k3.RepoURL, Name: "deps", Key: "k3", Branches: []string{"main"}}
	if _, err := s.FindCache(ctx, q); !errors.Is(err, archive.ErrNotFound) {
		t.Errorf("FindCache of an entry being deleted = %v, want ErrNotFound", err)
	}
	if n, err := s.ExpirePendingCaches(ctx, k3.Created); err != nil || n != 0 {
		t.Errorf("ExpirePendingCaches = %d, %v; want 0 (no pending entry)", n, err)
	}
	wantFiles("after expiry finished the deletion")
	if n, _ := s.CacheBytes(ctx, "team-a"); n != 0 {
		t.Errorf("CacheBytes after everything went = %d", n)
	}
}
