package sqlstore

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flow-ci/flow-ci/internal/archive"
)

// Limits on what the store accepts. UIDs, namespaces and stream names become parts
// of blob keys, so they are confined to characters every blob store takes as they are.
const (
	maxUID       = 128 // Kubernetes writes 36-character UUIDs
	maxNamespace = 63  // a DNS label, as Kubernetes namespaces are
	maxName      = 253 // a DNS subdomain, as Kubernetes object names are
	maxStream    = 63
	maxText      = 4096 // repository URL, branch, commit, phase, Missing
	maxCommit    = 64   // a SHA-256 object name
	minCommit    = 4
)

// minTime and maxTime bound the times the store keeps as int64 Unix nanoseconds.
var (
	minTime = time.Unix(0, -1<<63)
	maxTime = time.Unix(0, 1<<63-1)
)

// checkToken accepts a non-empty string of [a-z0-9-] no longer than limit.
func checkToken(what, s string, limit int) error {
	if s == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if len(s) > limit {
		return fmt.Errorf("%s %.20q... is %d bytes long, more than %d", what, s, len(s), limit)
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return fmt.Errorf("%s %q has %q, outside [a-z0-9-]", what, s, c)
		}
	}
	return nil
}

func checkUID(uid string) error { return checkToken("uid", uid, maxUID) }

func checkNamespace(ns string) error { return checkToken("namespace", ns, maxNamespace) }

// checkText accepts what both SQLite and PostgreSQL keep in a TEXT column unchanged:
// valid UTF-8 without NUL (PostgreSQL refuses both), no longer than limit.
func checkText(what, s string, limit int) error {
	if len(s) > limit {
		return fmt.Errorf("%s is %d bytes long, more than %d", what, len(s), limit)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s %q is not valid UTF-8", what, s)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%s %q contains a NUL byte", what, s)
	}
	return nil
}

func checkTime(what string, t time.Time) error {
	if !t.IsZero() && (t.Before(minTime) || t.After(maxTime)) {
		return fmt.Errorf("%s %s is outside the years 1678 to 2262 the store can keep", what, t)
	}
	return nil
}

// checkStreamKey checks a key to write with: every part is required.
func checkStreamKey(k archive.StreamKey) error {
	if err := checkReadKey(k); err != nil {
		return err
	}
	return checkNamespace(k.Namespace)
}

// checkReadKey checks a key to read with: Namespace "" finds a log in any namespace.
func checkReadKey(k archive.StreamKey) error {
	if err := checkUID(k.UID); err != nil {
		return err
	}
	if err := checkToken("stream", k.Stream, maxStream); err != nil {
		return err
	}
	if k.Namespace != "" {
		return checkNamespace(k.Namespace)
	}
	return nil
}

// checkState checks the fields of a log state the caller owns.
func checkState(st archive.LogState) error {
	if st.AtLastTime < 0 {
		return fmt.Errorf("AtLastTime is %d, less than 0", st.AtLastTime)
	}
	if err := checkTime("LastTime", st.LastTime); err != nil {
		return err
	}
	return checkText("Missing", st.Missing, maxText)
}

func checkRecord(r archive.Record) error {
	if err := checkUID(r.UID); err != nil {
		return err
	}
	if err := checkNamespace(r.Namespace); err != nil {
		return err
	}
	if err := checkName(r.Name); err != nil {
		return err
	}
	for _, f := range []struct {
		what, s string
		limit   int
	}{
		{"RepoURL", r.RepoURL, maxText}, {"Branch", r.Branch, maxText}, {"Commit", r.Commit, maxText},
		{"Phase", r.Phase, maxText}, {"Doc", string(r.Doc), maxDoc},
	} {
		if err := checkText(f.what, f.s, f.limit); err != nil {
			return fmt.Errorf("record %s: %w", r.UID, err)
		}
	}
	if len(r.Doc) > 0 && !json.Valid(r.Doc) {
		return fmt.Errorf("record %s: Doc is not valid JSON", r.UID)
	}
	if r.Created.IsZero() {
		return fmt.Errorf("record %s: Created is not set", r.UID)
	}
	if err := checkTime("Created", r.Created); err != nil {
		return fmt.Errorf("record %s: %w", r.UID, err)
	}
	if err := checkTime("Finished", r.Finished); err != nil {
		return fmt.Errorf("record %s: %w", r.UID, err)
	}
	return nil
}

// maxDoc bounds a record's document: one run's status, far below what either database
// keeps in a TEXT value.
const maxDoc = 16 << 20

func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("name is empty")
	}
	return checkText("name", name, maxName)
}

// normalCommit is the commit prefix a query matches: lowercase hex (as git writes
// object names), at least minCommit characters so that a prefix narrows the list.
func normalCommit(c string) (string, error) {
	c = strings.ToLower(c)
	if len(c) < minCommit || len(c) > maxCommit {
		return "", fmt.Errorf("commit %q: give %d to %d hex characters", c, minCommit, maxCommit)
	}
	for _, ch := range []byte(c) {
		if !('0' <= ch && ch <= '9' || 'a' <= ch && ch <= 'f') {
			return "", fmt.Errorf("commit %q is not hexadecimal", c)
		}
	}
	return c, nil
}

// chunkKey is where chunk i of a log is kept; the index is zero-padded so that a
// listing of a log's chunks sorts in order.
func chunkKey(ns, uid, stream string, i int) string {
	return fmt.Sprintf("%s/%s/%s/%08d.gz", ns, uid, stream, i)
}

// runPrefix holds every chunk of a run's logs in a namespace.
func runPrefix(ns, uid string) string { return ns + "/" + uid + "/" }
