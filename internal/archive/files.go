package archive

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrWrongSize is returned when a body to store is shorter or longer than the size
// given with it; nothing of it is stored.
var ErrWrongSize = errors.New("the body's length is not the size given")

// Artifact is one file a step of a run kept, downloadable after the run is gone.
type Artifact struct {
	UID       string // the run's UID
	Namespace string
	Run       string // the run's name
	Step      int    // index in the run's status.steps
	StepName  string
	// Path is where the file was, relative to the repository root, '/'-separated and
	// cleaned: the caller validates it; the store only keeps it (and never puts it in
	// a blob key).
	Path   string
	Size   int64
	SHA256 string // hex, computed by the store while writing
	// Created is when it was stored: the caller's time if set, else the store's.
	Created time.Time
}

// CacheEntry is one saved cache: a tar.zst of a cache's directories, saved by a run
// for the runs after it in the same namespace and repository.
type CacheEntry struct {
	ID                                    string // store-assigned
	Namespace, RepoURL, Branch, Name, Key string
	Size                                  int64
	SHA256                                string // hex, computed by the store while writing
	RunUID                                string // the run that saved it
	// Created is when it was saved (the caller's time if set, else the store's);
	// LastUsed when it was last opened (Created until then), which eviction orders by.
	Created, LastUsed time.Time
	// Committed is false while the run that saved it has not succeeded: FindCache
	// never finds it then.
	Committed bool
}

// CacheQuery finds the cache a run restores.
type CacheQuery struct {
	Namespace, RepoURL, Name string
	Key                      string   // exact key, tried first
	RestoreKeys              []string // key prefixes, tried in order after the exact key
	Branches                 []string // scopes in order (the run's branch, then the default branch)
}

// ArtifactStore keeps the files steps kept. A run's artifacts go with its record and
// logs (Store.Delete).
type ArtifactStore interface {
	// PutArtifact streams body, exactly a.Size bytes, into the store and computes its
	// SHA256 on the way; a.SHA256 is ignored. A body of another length is
	// ErrWrongSize and stores nothing. The same (UID, Path) again replaces the earlier
	// artifact (a retried step). It returns the artifact as stored.
	PutArtifact(ctx context.Context, a Artifact, body io.Reader) (Artifact, error)
	// Artifacts lists a run's artifacts by Step, then Path (byte-wise).
	Artifacts(ctx context.Context, uid string) ([]Artifact, error)
	// OpenArtifact reads an artifact's bytes; ErrNotFound when the run has none at
	// path.
	OpenArtifact(ctx context.Context, uid, path string) (io.ReadCloser, Artifact, error)
	// ArtifactBytes is the size of all the namespace's artifacts, for its limit.
	ArtifactBytes(ctx context.Context, namespace string) (int64, error)
}

// CacheStore keeps caches per namespace and repository. They outlive the runs that
// saved them until they are evicted.
type CacheStore interface {
	// PutCache streams body, exactly e.Size bytes, into a new entry pending under
	// e.RunUID; ID, SHA256, LastUsed and Committed are the store's. A body of another
	// length is ErrWrongSize and stores nothing.
	PutCache(ctx context.Context, e CacheEntry, body io.Reader) (CacheEntry, error)
	// FinishCaches ends the run's pending entries and says how many. With commit each
	// becomes findable and replaces the committed entry of the same Namespace,
	// RepoURL, Branch, Name and Key, which is deleted; without, they are deleted. Each
	// entry changes atomically: a crash leaves the old entry or the new one findable.
	FinishCaches(ctx context.Context, runUID string, commit bool) (int, error)
	// FindCache is the committed entry q restores: the exact Key on each of
	// q.Branches in order, then each of q.RestoreKeys as a prefix of the key (matched
	// literally, case and all) on each branch in order; the newest (by Created) at
	// the first of those steps that finds one. ErrNotFound when none does.
	FindCache(ctx context.Context, q CacheQuery) (CacheEntry, error)
	// OpenCache reads a committed entry's bytes and sets its LastUsed to now.
	// ErrNotFound when there is no committed entry with this ID.
	OpenCache(ctx context.Context, id string) (io.ReadCloser, CacheEntry, error)
	// CacheBytes is the size of all the namespace's entries, committed or pending.
	CacheBytes(ctx context.Context, namespace string) (int64, error)
	// EvictCaches deletes the namespace's committed entries, least recently used
	// first, until its committed entries' bytes are at most maxBytes, and says how
	// many it deleted and their bytes. Pending entries do not count: they are bounded
	// when they arrive, and a commit must not evict fresh entries for them.
	EvictCaches(ctx context.Context, namespace string, maxBytes int64) (evicted int, freed int64, err error)
	// ExpirePendingCaches deletes pending entries created before olderThan, whose
	// run never finished them, and says how many.
	ExpirePendingCaches(ctx context.Context, olderThan time.Time) (int, error)
}
