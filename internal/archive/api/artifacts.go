package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/flow-ci/flow-ci/internal/archive"
)

// HeaderSHA256 carries an artifact's sha256 (hex) on a download, so that the reader can
// check what it received.
const HeaderSHA256 = "X-Flowci-Sha256"

// MaxArtifactPath bounds an artifact's path, as a blob key's.
const MaxArtifactPath = 1024

// Artifact is one kept file as a list shows it.
type Artifact struct {
	Step     int       `json:"step"`
	StepName string    `json:"stepName"`
	Path     string    `json:"path"`
	Size     int64     `json:"size"`
	SHA256   string    `json:"sha256"`
	Created  time.Time `json:"created,omitzero"`
}

// ArtifactList is a run's kept files, by step then path.
type ArtifactList struct {
	UID   string     `json:"uid"`
	Items []Artifact `json:"items"`
}

// UploadResult is the archive's answer to an upload: what it stored, and what it
// refused and why.
type UploadResult struct {
	Stored  []Uploaded `json:"stored"`
	Refused []Refusal  `json:"refused,omitempty"`
}

// Uploaded is one stored file, with the sha256 the archive computed.
type Uploaded struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Refusal is a file the archive did not keep, and why.
type Refusal struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// listArtifacts answers GET /v1/namespaces/{ns}/runs/{name}/artifacts[?uid=]: the
// files the run's steps kept. Reading them is reading the run's logs: get on pods/log.
func (s *server) listArtifacts(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("ns"), r.PathValue("name")
	uid, err := runRef(ns, name, r.URL.RawQuery)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !s.allow(w, r, ns, "get", "pods", "log") {
		return
	}
	rec, _, err := s.record(r.Context(), ns, name, uid)
	var items []archive.Artifact
	if err == nil {
		items, err = s.artifactsOf(r.Context(), rec.UID, ns)
	}
	if err != nil {
		s.storeFailed(w, r, err, "the archive holds no such run")
		return
	}
	out := ArtifactList{UID: rec.UID, Items: make([]Artifact, 0, len(items))}
	for _, a := range items {
		out.Items = append(out.Items, Artifact{Step: a.Step, StepName: a.StepName, Path: a.Path, Size: a.Size, SHA256: a.SHA256, Created: a.Created.UTC()})
	}
	s.writeJSON(w, out)
}

// artifactsOf are the run's artifacts kept in namespace ns: a UID never reaches
// another namespace's files.
func (s *server) artifactsOf(ctx context.Context, uid, ns string) ([]archive.Artifact, error) {
	all, err := s.store.Artifacts(ctx, uid)
	if err != nil {
		return nil, err
	}
	kept := all[:0]
	for _, a := range all {
		if a.Namespace == ns {
			kept = append(kept, a)
		}
	}
	return kept, nil
}

// getArtifact answers GET /v1/namespaces/{ns}/runs/{name}/artifacts/{path...}[?uid=]:
// the file byte for byte, with its sha256 in X-Flowci-Sha256. The body is sent as
// an attachment of an opaque type, so that a browser never renders a tenant's file as
// a page of the archive's origin.
func (s *server) getArtifact(w http.ResponseWriter, r *http.Request) {
	ns, name, file := r.PathValue("ns"), r.PathValue("name"), r.PathValue("path")
	uid, err := runRef(ns, name, r.URL.RawQuery)
	if err == nil {
		err = CheckArtifactPath(file)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !s.allow(w, r, ns, "get", "pods", "log") {
		return
	}
	rec, _, err := s.record(r.Context(), ns, name, uid)
	if err != nil {
		s.storeFailed(w, r, err, "the archive holds no such run")
		return
	}
	body, a, err := s.store.OpenArtifact(r.Context(), rec.UID, file)
	if err == nil && a.Namespace != ns {
		_ = body.Close()
		err = archive.ErrNotFound
	}
	if err != nil {
		s.storeFailed(w, r, err, "the run kept no artifact "+file)
		return
	}
	defer func() { _ = body.Close() }()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(a.Size, 10))
	h.Set("Content-Disposition", "attachment; filename="+strconv.Quote(headerText(path.Base(a.Path), 200)))
	h.Set(HeaderSHA256, a.SHA256)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if n, err := io.Copy(w, io.LimitReader(body, a.Size)); err != nil || n < a.Size {
		if r.Context().Err() == nil {
			s.log.Error(err, "sending an artifact", "namespace", ns, "uid", rec.UID, "sent", n, "size", a.Size)
		}
		panic(http.ErrAbortHandler) // a broken download, never a shorter file that looks whole
	}
}

// CheckArtifactPath refuses a path that is not a clean relative path inside the
// workspace, printable UTF-8, outside any .git directory: what a step's uploader sends
// and a reader asks for alike. A reader's terminal prints it, and a download writes it
// into a directory of the reader's.
func CheckArtifactPath(p string) error {
	switch {
	case p == "" || len(p) > MaxArtifactPath:
		return bad("an artifact's path must have 1 to %d bytes", MaxArtifactPath)
	case !utf8.ValidString(p) || strings.IndexFunc(p, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) >= 0 || strings.Contains(p, "\\"):
		return bad("an artifact's path must be printable UTF-8 without '\\'")
	case path.IsAbs(p) || path.Clean(p) != p || p == "." || p == ".." || strings.HasPrefix(p, "../"):
		return bad("an artifact's path must be clean and relative to the repository root, got %q", p)
	case slices.Contains(strings.Split(p, "/"), ".git"):
		return bad("an artifact's path must not be in a .git directory, got %q", p)
	}
	return nil
}

// errRefused is an upload the archive's limits refuse; its text is the step's reason.
type errRefused struct{ msg string }

func (e errRefused) Error() string { return e.msg }

// usage is what a run and its namespace hold, read once per upload and counted on as
// its files are stored: concurrent uploads of one namespace may each pass a limit once
// (at most Uploads files over it), never repeatedly.
type usage struct {
	run, namespace int64
	files          int
	sizes          map[string]int64 // the run's files, by path
}

// maxRunArtifacts bounds the files of one run: each is a row the list reads.
const maxRunArtifacts = 5000

func (s *server) usageOf(ctx context.Context, a Agent) (*usage, error) {
	kept, err := s.store.Artifacts(ctx, a.RunUID)
	if err != nil && !errors.Is(err, archive.ErrNotFound) {
		return nil, err
	}
	u := &usage{sizes: map[string]int64{}}
	for _, k := range kept {
		u.run += k.Size
		u.sizes[k.Path] = k.Size
	}
	u.files = len(kept)
	if u.namespace, err = s.store.ArtifactBytes(ctx, a.Namespace); err != nil {
		return nil, err
	}
	return u, nil
}

// admit refuses a file of size bytes over one of the limits (one file, the run's files
// and bytes, the namespace's bytes), or counts it in.
func (u *usage) admit(l Limits, ns, file string, size int64) error {
	old, replaces := u.sizes[file] // a retried step replaces its file
	switch {
	case size > l.FileBytes:
		return errRefused{fmt.Sprintf("%s is %d bytes, more than the %d one artifact may have (--max-artifact-bytes)", file, size, l.FileBytes)}
	case !replaces && u.files >= maxRunArtifacts:
		return errRefused{fmt.Sprintf("%s: the run kept %d files already, as many as one run may", file, u.files)}
	case u.run-old+size > l.RunBytes:
		return errRefused{fmt.Sprintf("%s (%d bytes) would take the run's artifacts past %d bytes (--max-run-artifact-bytes)", file, size, l.RunBytes)}
	case u.namespace-old+size > l.NamespaceBytes:
		return errRefused{fmt.Sprintf("%s (%d bytes) would take namespace %s's artifacts past %d bytes (--max-namespace-artifact-bytes); they go with their runs' records", file, size, ns, l.NamespaceBytes)}
	}
	u.run, u.namespace, u.sizes[file] = u.run-old+size, u.namespace-old+size, size
	if !replaces {
		u.files++
	}
	return nil
}
