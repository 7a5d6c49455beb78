package api

import (
	"encoding/base64"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/archive"
)

// Bounds of what a request may ask. A value past them cannot match a stored run (the
// store keeps Kubernetes names and UIDs, git SHAs, and times it can hold as Unix
// nanoseconds), so it is a 400, not an empty answer.
const (
	maxUID    = 128
	maxRepo   = 2048
	maxBranch = 1024
	maxCursor = 1024
	minCommit = 4
	maxCommit = 64 // a SHA-256 object name
	minYear   = 1900
	maxYear   = 2200
)

// badRequest is malformed input: the message says which part and why.
type badRequest string

func (b badRequest) Error() string { return string(b) }

func bad(format string, args ...any) error { return badRequest(fmt.Sprintf(format, args...)) }

// phases are the values of phase=, the phases of a PipelineRun.
var phases = []string{
	string(v1alpha1.PhaseQueued), string(v1alpha1.PhasePending), string(v1alpha1.PhaseRunning),
	string(v1alpha1.PhaseSucceeded), string(v1alpha1.PhaseFailed), string(v1alpha1.PhaseCancelled),
}

// checkNamespace accepts a Kubernetes namespace name (a DNS-1123 label).
func checkNamespace(ns string) error {
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return bad("namespace %.80q is not a valid namespace name: %s", ns, errs[0])
	}
	return nil
}

// checkName accepts a Kubernetes object name (a DNS-1123 subdomain).
func checkName(name string) error {
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return bad("run name %.80q is not a valid name: %s", name, errs[0])
	}
	return nil
}

// checkStream accepts a stream name ("clone", "step-0", ...): a DNS-1123 label, as the
// store keeps them.
func checkStream(stream string) error {
	if errs := validation.IsDNS1123Label(stream); len(errs) > 0 {
		return bad("stream %.80q is not a valid stream name (clone, step-0, ...)", stream)
	}
	return nil
}

// checkUID accepts what Kubernetes writes as a UID: lowercase letters, digits and
// dashes, as the store keeps them.
func checkUID(uid string) error {
	if uid == "" || len(uid) > maxUID || strings.TrimFunc(uid, isUIDChar) != "" {
		return bad("uid %.80q is not a run's UID", uid)
	}
	return nil
}

func isUIDChar(r rune) bool { return 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-' }

// parseQuery parses a raw query and refuses a parameter not in allowed, or one given
// twice: a misspelt filter would otherwise silently list everything.
func parseQuery(raw string, allowed ...string) (url.Values, error) {
	v, err := url.ParseQuery(raw)
	if err != nil {
		return nil, bad("the query is not valid: %s", strings.TrimPrefix(err.Error(), "invalid "))
	}
	for _, k := range slices.Sorted(maps.Keys(v)) { // the first bad one, the same each time
		switch {
		case !slices.Contains(allowed, k):
			return nil, bad("unknown parameter %.40q (known: %s)", k, strings.Join(allowed, ", "))
		case len(v[k]) > 1:
			return nil, bad("parameter %q is given more than once", k)
		}
	}
	return v, nil
}

// listQuery turns a list's query into the store's Query in namespace ns.
func listQuery(ns, raw string) (archive.Query, error) {
	v, err := parseQuery(raw, "repo", "branch", "commit", "phase", "since", "until", "limit", "after")
	if err != nil {
		return archive.Query{}, err
	}
	q := archive.Query{Namespace: ns, RepoURL: v.Get("repo"), Branch: v.Get("branch"), Phase: v.Get("phase"), After: v.Get("after")}
	if err := firstError(checkText("repo", q.RepoURL, maxRepo), checkText("branch", q.Branch, maxBranch),
		checkCursor(q.After), checkPhase(q.Phase)); err != nil {
		return archive.Query{}, err
	}
	if q.Commit, err = parseCommit(v.Get("commit")); err != nil {
		return archive.Query{}, err
	}
	if q.Since, err = parseTime("since", v.Get("since")); err != nil {
		return archive.Query{}, err
	}
	if q.Until, err = parseTime("until", v.Get("until")); err != nil {
		return archive.Query{}, err
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return archive.Query{}, bad("since must be before until")
	}
	if q.Limit, err = parseLimit(v.Get("limit")); err != nil {
		return archive.Query{}, err
	}
	return q, nil
}

// checkText accepts printable UTF-8 of at most max bytes.
func checkText(param, s string, max int) error {
	if len(s) > max {
		return bad("%s is %d bytes long, more than %d", param, len(s), max)
	}
	if !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return bad("%s holds bytes that are not printable UTF-8", param)
	}
	return nil
}

// checkCursor accepts what a list's next is: the store's cursor of a newest-first
// list, base64url of "n.<created>.<uid>". The store decodes it again; checking it here
// makes a cursor no list returned a 400 rather than the store's error, a 500. The
// format is sqlstore's (its cursor.encode): TestPaging pages with the store's own
// cursors, so it fails if the two part.
func checkCursor(after string) error {
	if after == "" {
		return nil
	}
	ok := func(r rune) bool {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_'
	}
	refused := bad("after is not a next value a list returned")
	if len(after) > maxCursor || strings.TrimFunc(after, ok) != "" {
		return refused
	}
	raw, err := base64.RawURLEncoding.DecodeString(after)
	if err != nil {
		return refused
	}
	parts := strings.SplitN(string(raw), ".", 3)
	if len(parts) != 3 || parts[0] != "n" || checkUID(parts[2]) != nil {
		return refused
	}
	if _, err := strconv.ParseInt(parts[1], 10, 64); err != nil {
		return refused
	}
	return nil
}

func checkPhase(phase string) error {
	if phase != "" && !slices.Contains(phases, phase) {
		return bad("phase %.40q is not one of %s", phase, strings.Join(phases, ", "))
	}
	return nil
}

// parseCommit accepts a commit SHA or a prefix of at least minCommit hex digits, in
// either case; git writes them lowercase.
func parseCommit(c string) (string, error) {
	if c == "" {
		return "", nil
	}
	hex := func(r rune) bool { return '0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F' }
	if len(c) < minCommit || len(c) > maxCommit || strings.TrimFunc(c, hex) != "" {
		return "", bad("commit %.80q is not %d to %d hex digits", c, minCommit, maxCommit)
	}
	return strings.ToLower(c), nil
}

// parseTime reads an RFC 3339 time in the years the store can keep.
func parseTime(param, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, bad("%s %.80q is not an RFC 3339 time (2006-01-02T15:04:05Z)", param, s)
	}
	if t.Year() < minYear || t.Year() > maxYear {
		return time.Time{}, bad("%s %q is outside the years %d to %d", param, s, minYear, maxYear)
	}
	return t, nil
}

// parseLimit reads a page size from 1 to MaxLimit; none is the store's default.
func parseLimit(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxLimit {
		return 0, bad("limit %.20q is not a number from 1 to %d", s, MaxLimit)
	}
	return n, nil
}

// runRef checks a run's namespace and name from a request's path, and returns the
// UID its query may name (uid=, the only parameter allowed): "" is the newest run of
// that name.
func runRef(ns, name, raw string) (uid string, err error) {
	uid, _, err = refQuery(ns, name, raw, "uid")
	return uid, err
}

// logRef checks a log's path and query: the run's UID (uid=, as runRef) and the byte
// of the log to start from (offset=, 0 when not given), so that a reader following a
// log that is still appended to asks only for what it has not read.
func logRef(ns, name, stream, raw string) (uid string, offset int64, err error) {
	uid, v, err := refQuery(ns, name, raw, "uid", "offset")
	if err == nil {
		err = checkStream(stream)
	}
	if err != nil {
		return "", 0, err
	}
	if s := v.Get("offset"); v.Has("offset") {
		offset, err = strconv.ParseInt(s, 10, 64)
		if err != nil || offset < 0 || strings.TrimLeft(s, "0123456789") != "" {
			return "", 0, bad("offset %.20q is not a number of bytes from 0", s)
		}
	}
	return uid, offset, nil
}

// refQuery checks a run's namespace and name and parses the query, which may hold the
// allowed parameters only; a uid= among them is checked.
func refQuery(ns, name, raw string, allowed ...string) (uid string, v url.Values, err error) {
	if err := firstError(checkNamespace(ns), checkName(name)); err != nil {
		return "", nil, err
	}
	if v, err = parseQuery(raw, allowed...); err != nil {
		return "", nil, err
	}
	if uid = v.Get("uid"); v.Has("uid") {
		if err := checkUID(uid); err != nil {
			return "", nil, err
		}
	}
	return uid, v, nil
}

func firstError(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
