package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"k8s.io/client-go/rest"

	"github.com/flow-ci/flow-ci/internal/archive/api"
	archiveclient "github.com/flow-ci/flow-ci/internal/archive/client"
	"github.com/flow-ci/flow-ci/internal/webview"
)

// webArchive is the run archive as the web view reads it (webview.Archive), through
// internal/archive/client. Each read is its reader's: in a cluster hc carries no
// identity and each request the reader's own token, so the archive authorizes the
// reader and never the web view; on a laptop hc authenticates as the kubeconfig's
// user, whose web view it is.
type webArchive struct {
	url string
	hc  *http.Client
}

var _ webview.Archive = webArchive{}

// uiArchive is the web view's archive: in a cluster at its Service (or --archive-url),
// on a laptop where the CLI finds it; both trust the certificate it publishes.
func uiArchive(ctx context.Context, kube *kubeFlags, k *clients, inCluster bool) (webview.Archive, error) {
	t, err := kube.archive.target(ctx, k.kube, inCluster)
	if err != nil {
		return nil, err
	}
	var cfg *rest.Config
	if !inCluster && k.archive != nil {
		cfg = k.archive.cfg
	}
	hc, err := archiveHTTP(t, cfg)
	if err != nil {
		return nil, fmt.Errorf("the run archive at %s: %w", t.url, err)
	}
	return webArchive{url: t.url, hc: hc}, nil
}

func (a webArchive) client(token string) *archiveclient.Client {
	return archiveclient.New(a.url, token, a.hc)
}

func (a webArchive) List(ctx context.Context, token, ns string, q webview.ArchiveQuery) ([]webview.ArchivedRun, string, error) {
	items, next, err := a.client(token).List(ctx, ns, archiveclient.Filter{RepoURL: q.RepoURL, Branch: q.Branch, Phase: q.Phase,
		After: q.After, Limit: q.Limit})
	if err != nil {
		return nil, "", refusal(err)
	}
	out := make([]webview.ArchivedRun, 0, len(items))
	for _, s := range items {
		out = append(out, archivedRunOf(api.Run{Summary: s}))
	}
	return out, next, nil
}

func (a webArchive) Run(ctx context.Context, token, ns, name, uid string) (webview.ArchivedRun, error) {
	run, err := a.client(token).GetUID(ctx, ns, name, uid)
	if err != nil {
		return webview.ArchivedRun{}, refusal(err)
	}
	return archivedRunOf(run), nil
}

func (a webArchive) Log(ctx context.Context, token, ns, name, uid, stream string, w io.Writer) error {
	_, err := a.client(token).LogUID(ctx, ns, name, uid, stream, w)
	return refusal(err)
}

func archivedRunOf(r api.Run) webview.ArchivedRun {
	out := webview.ArchivedRun{UID: r.UID, Namespace: r.Namespace, Name: r.Name, RepoURL: r.RepoURL, Branch: r.Branch,
		Commit: r.Commit, Phase: r.Phase, Created: r.Created, Finished: r.Finished, Record: r.Record}
	for _, s := range r.Streams {
		out.Logs = append(out.Logs, webview.ArchivedLog{Stream: s.Name, Bytes: s.Bytes, Done: s.Done, Missing: s.Missing, Last: s.Last})
	}
	return out
}

// refusal makes the archive's 401 and 403 webview.ErrForbidden (a 403 page with the
// archive's message); a 404 stays archive.ErrNotFound.
func refusal(err error) error {
	var e *archiveclient.Error
	if errors.As(err, &e) && (e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden) {
		return fmt.Errorf("%w: %s", webview.ErrForbidden, e.Message)
	}
	return err
}

var _ webview.Artifacts = webArchive{}

func (a webArchive) Artifacts(ctx context.Context, token, ns, name, uid string) ([]webview.ArchivedArtifact, error) {
	list, err := a.client(token).Artifacts(ctx, ns, name, uid)
	if err != nil {
		return nil, refusal(err)
	}
	out := make([]webview.ArchivedArtifact, 0, len(list.Items))
	for _, it := range list.Items {
		out = append(out, webview.ArchivedArtifact{StepName: it.StepName, Path: it.Path, SHA256: it.SHA256, Size: it.Size})
	}
	return out, nil
}

func (a webArchive) Artifact(ctx context.Context, token, ns, name, uid, file string, w io.Writer) error {
	_, _, err := a.client(token).Artifact(ctx, ns, name, uid, file, w)
	return refusal(err)
}
