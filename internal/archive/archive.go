// Package archive is the run archive's storage contract: the record of each finished
// run, the logs of its clone and steps and the files its steps kept (artifacts), kept
// after the run, its pods and its volume are gone; and the caches runs restore and
// save. One interface, two backends (an embedded SQLite database with compressed log
// files on one volume; PostgreSQL with an S3-compatible object store), and one
// conformance suite (archivetest) that both pass.
package archive

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned for a record or a log the store does not hold.
var ErrNotFound = errors.New("not found in the archive")

// ErrComplete is returned by Append to a log already marked Done: a complete log is
// final, so that a late writer (a stream stopped while its last save was in flight)
// cannot undo what finishing it recorded.
var ErrComplete = errors.New("the log is complete")

// Record is a finished run as the archive keeps it. The indexed fields are what lists
// filter on; Doc is the whole record (Document, as JSON).
type Record struct {
	UID       string
	Namespace string
	Name      string
	RepoURL   string
	Branch    string
	Commit    string
	Phase     string
	Created   time.Time // the run's creation time: lists are ordered by it
	Finished  time.Time
	Doc       []byte
}

// Query selects records. Empty fields match everything; Namespace "" is every namespace
// (only for the archive's own use: readers are always confined to a namespace).
type Query struct {
	Namespace string
	RepoURL   string
	Branch    string
	Commit    string // a full SHA or a prefix of at least 4 characters
	Phase     string
	Since     time.Time // created at or after
	Until     time.Time // created before
	// Oldest lists oldest first (retention); the default is newest first.
	Oldest bool
	// Limit is the page size (0: 50; at most 500).
	Limit int
	// After is the cursor a previous page returned, to read the next one.
	After string
}

// StreamKey names one log: a run (by UID) and one of its streams, "clone" or
// "step-<index>". A log stays in the namespace its first Append gave it; a read with a
// Namespace finds it only there, a read with "" anywhere (only for the archive's own
// use, as with Query).
type StreamKey struct {
	UID       string
	Namespace string
	Stream    string
}

// LogState is what the archive knows of a stored log, saved with each chunk so that a
// restarted archive resumes where the stored copy ends.
type LogState struct {
	// Bytes is the raw (uncompressed) length of the stored log.
	Bytes int64
	// Stored is what the log occupies in the store (compressed), for quotas.
	Stored int64
	// Chunks is the number of chunks appended.
	Chunks int
	// LastTime is the kubelet's timestamp of the last stored line, and AtLastTime how
	// many stored lines carry exactly that timestamp: resuming skips what the new stream
	// repeats up to there.
	LastTime   time.Time
	AtLastTime int
	// Done says the stream reached its end (the container ended and its log was read
	// to the end, or the archive gave up on it and said why in Missing).
	Done bool
	// Missing says which part of the log the archive could not store, if any.
	Missing string
	// Cut says the log reached its cap; the rest was dropped.
	Cut bool
}

// Stream is one stored log of a run, with its state.
type Stream struct {
	Stream string
	State  LogState
}

// Usage is what one namespace holds in the archive.
type Usage struct {
	Namespace string
	Records   int64
	// Stored is the bytes its logs occupy (compressed) plus its records' documents.
	Stored int64
}

// Store is the archive's storage. Implementations are safe for concurrent use; the
// archive writes each stream from one goroutine at a time.
type Store interface {
	// Append stores chunk at the end of the log and saves next as its state, together:
	// after a crash the state never counts bytes that are not stored, and bytes past
	// the state are overwritten by the next Append. An empty chunk only saves next.
	// The store sets Bytes, Stored and Chunks itself (from the saved state and chunk);
	// next gives the other fields. It returns the state as saved. A log once saved
	// Done is final: Append to it returns ErrComplete and changes nothing.
	Append(ctx context.Context, key StreamKey, chunk []byte, next LogState) (LogState, error)
	// State is the saved state of a log; ok is false when nothing was stored yet.
	State(ctx context.Context, key StreamKey) (state LogState, ok bool, err error)
	// Streams lists a run's logs, by stream name.
	Streams(ctx context.Context, uid string) ([]Stream, error)
	// OpenLog reads a stored log from its start, uncompressed: exactly the bytes
	// appended, in order.
	OpenLog(ctx context.Context, key StreamKey) (io.ReadCloser, error)

	// PutRecord stores or replaces the record of the run with r.UID.
	PutRecord(ctx context.Context, r Record) error
	// Record is the newest record of a run of this name in the namespace.
	Record(ctx context.Context, namespace, name string) (Record, error)
	// RecordByUID is the record of the run with this UID.
	RecordByUID(ctx context.Context, uid string) (Record, error)
	// List pages through the records matching q; next is "" after the last page.
	List(ctx context.Context, q Query) (records []Record, next string, err error)
	// Delete removes a run's record, logs and artifacts (retention); deleting what is
	// not there is not an error. Caches the run saved stay.
	Delete(ctx context.Context, uid string) error
	// Usage is what each namespace holds in records and logs (its artifacts and caches
	// have limits of their own: ArtifactBytes, CacheBytes).
	Usage(ctx context.Context) ([]Usage, error)

	ArtifactStore
	CacheStore

	Close() error
}
