package api

import (
	"encoding/json"
	"time"

	"github.com/flow-ci/flow-ci/internal/archive"
)

// The headers of a log download: the stored log's state when the download began. The
// body is exactly X-Flowci-Log-Bytes bytes long.
const (
	HeaderLogBytes   = "X-Flowci-Log-Bytes"
	HeaderLogDone    = "X-Flowci-Log-Done"
	HeaderLogCut     = "X-Flowci-Log-Cut"
	HeaderLogMissing = "X-Flowci-Log-Missing"
)

// MaxLimit is the largest page a list returns.
const MaxLimit = 500

// Summary is a run as a list shows it.
type Summary struct {
	UID       string    `json:"uid"`
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	RepoURL   string    `json:"repoURL"`
	Branch    string    `json:"branch"`
	Commit    string    `json:"commit"`
	Phase     string    `json:"phase"`
	Created   time.Time `json:"created,omitzero"`
	Finished  time.Time `json:"finished,omitzero"`
}

// Page is one page of a list; Next, when not empty, is the after= of the next page.
type Page struct {
	Items []Summary `json:"items"`
	Next  string    `json:"next"`
}

// Run is one run's record: its summary, the stored document as the archive wrote it,
// and its logs. A run read by UID before its record is stored (it still runs) has no
// Record, and its Summary holds only its UID, namespace and name.
type Run struct {
	Summary
	Record  json.RawMessage `json:"record,omitempty"`
	Streams []Stream        `json:"streams"`
}

// Stream is one stored log of a run and how much of it the archive holds.
type Stream struct {
	Name  string `json:"name"`
	Bytes int64  `json:"bytes"`
	// Done: the log is complete (or the archive gave up on it: see Missing).
	Done bool `json:"done"`
	// Cut: the log reached the archive's cap and the rest was dropped.
	Cut bool `json:"cut"`
	// Missing says which part of the log the archive could not store.
	Missing string `json:"missing,omitempty"`
	// Stored is what the log occupies in the store (compressed).
	Stored int64 `json:"stored"`
	// Last is the time the kubelet stamped on the log's last stored line (zero while
	// it holds none): the attempts of one step, each a log, sort by it.
	Last time.Time `json:"last,omitzero"`
}

// ErrorBody is the body of every answer that is not a success.
type ErrorBody struct {
	Error string `json:"error"`
}

func summaryOf(r archive.Record) Summary {
	s := Summary{UID: r.UID, Namespace: r.Namespace, Name: r.Name, RepoURL: r.RepoURL, Branch: r.Branch,
		Commit: r.Commit, Phase: r.Phase, Created: r.Created.UTC()}
	if !r.Finished.IsZero() {
		s.Finished = r.Finished.UTC()
	}
	return s
}

func streamOf(s archive.Stream) Stream {
	st := Stream{Name: s.Stream, Bytes: s.State.Bytes, Stored: s.State.Stored, Done: s.State.Done, Cut: s.State.Cut, Missing: s.State.Missing}
	if !s.State.LastTime.IsZero() {
		st.Last = s.State.LastTime.UTC()
	}
	return st
}
