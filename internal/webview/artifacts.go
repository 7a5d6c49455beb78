package webview

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// ArchivedArtifact is one file a run's step kept in the archive.
type ArchivedArtifact struct {
	StepName, Path, SHA256 string
	Size                   int64
}

// Artifacts is the part of an Archive that serves the files steps kept; an Archive
// without it shows none.
type Artifacts interface {
	// Artifacts lists the files the run with uid kept ("": the newest of that name).
	Artifacts(ctx context.Context, token, namespace, name, uid string) ([]ArchivedArtifact, error)
	// Artifact writes one of them to w, checked against its stored sha256.
	Artifact(ctx context.Context, token, namespace, name, uid, file string, w io.Writer) error
}

// artifactRow is a kept file on a run's page, with its download link.
type artifactRow struct {
	ArchivedArtifact
	Link string
}

// artifactRows are the files the run kept, as its page lists them; none without an
// archive, or when the reader may not read them (the archive answers for itself).
func (ra *readerArchive) artifactRows(ctx context.Context, ns, name, uid string) []artifactRow {
	if ra == nil {
		return nil
	}
	a, ok := ra.a.(Artifacts)
	if !ok {
		return nil
	}
	items, err := a.Artifacts(ctx, ra.token, ns, name, uid)
	if err != nil {
		return nil
	}
	rows := make([]artifactRow, 0, len(items))
	for _, it := range items {
		link := fmt.Sprintf("/runs/%s/%s/artifacts/%s", url.PathEscape(ns), url.PathEscape(name), escapePath(it.Path))
		if uid != "" {
			link += "?uid=" + url.QueryEscape(uid)
		}
		rows = append(rows, artifactRow{ArchivedArtifact: it, Link: link})
	}
	return rows
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// artifact serves GET /runs/{ns}/{name}/artifacts/{path...}[?uid=]: the file from the
// archive, which authorizes the reader (get on pods/log), as a download of an opaque
// type, so that a tenant's file never renders as a page of the web view's origin.
func (s *Server) artifact(w http.ResponseWriter, r *http.Request) {
	ns, name, file, uid := r.PathValue("ns"), r.PathValue("name"), r.PathValue("path"), r.URL.Query().Get("uid")
	if err := firstError(checkName("namespace", ns, false), checkName("run", name, false), checkUID(uid)); err != nil {
		s.fail(w, err)
		return
	}
	ra := s.archiveFor(r)
	a, ok := Archive(nil), false
	if ra != nil {
		a = ra.a
		_, ok = a.(Artifacts)
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	pw := &pendingWriter{w: w, name: path.Base(file)}
	if err := a.(Artifacts).Artifact(r.Context(), ra.token, ns, name, uid, file, pw); err != nil {
		if pw.started {
			panic(http.ErrAbortHandler) // a broken download, never a shorter file that looks whole
		}
		s.fail(w, archiveFailed{err})
	}
}

// pendingWriter sends the download's headers with its first byte, so that an error
// before it is still an error page.
type pendingWriter struct {
	w       http.ResponseWriter
	name    string
	started bool
}

func (p *pendingWriter) Write(b []byte) (int, error) {
	if !p.started {
		p.started = true
		h := p.w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Disposition", "attachment; filename="+strconv.Quote(p.name))
		p.w.WriteHeader(http.StatusOK)
	}
	return p.w.Write(b)
}
