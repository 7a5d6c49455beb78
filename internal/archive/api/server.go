// Package api is the run archive's read API: JSON lists and records of archived runs,
// and their logs byte for byte. Every request carries a Kubernetes bearer token, and
// every read is authorized for its reader as the API server would authorize the same
// read of the live objects: a list needs list on pipelineruns in the namespace, a
// record get on pipelineruns, a log get on pods/log (what kubectl logs needs).
// Authorization comes before the store is read, so a 403 never says whether a run
// exists.
//
// It takes its store and its access checks from the caller; it builds no client.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/go-logr/logr"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/archive"
	"github.com/flow-ci/flow-ci/internal/webview"
)

// maxToken bounds a bearer token, as the web view does.
const maxToken = 8 << 10

// Options configure the handler.
type Options struct {
	// Store holds the archived runs and logs.
	Store archive.Store
	// Access authenticates each request's token and authorizes each read (in the
	// cluster: controllers/access). Its answers are kept a few seconds, as the web
	// view keeps them.
	Access webview.Access
	// Agents authenticates the pods of runs that upload what their steps keep; nil
	// takes no uploads.
	Agents Agents
	// Limits bound the uploads; zero fields take DefaultLimits'.
	Limits Limits
	// Metrics counts cache restores and saves; nil counts nothing.
	Metrics CacheMetrics
	// Log receives what a reader is not told: the store's and the cluster's errors.
	// The zero Logger discards them.
	Log logr.Logger
}

type server struct {
	store   archive.Store
	access  webview.Access
	agents  Agents
	limits  Limits
	uploads chan struct{}
	// perNamespace counts the uploads each namespace holds or waits for.
	slotsMu      sync.Mutex
	perNamespace map[string]int
	counts       CacheMetrics
	log          logr.Logger
	mux          *http.ServeMux
	// agentMux routes agents' requests once they are authenticated.
	agentMux *http.ServeMux
}

// New returns the archive's read API. It panics without a Store or an Access: an
// archive served without authorization would show every namespace's logs to anyone.
func New(opts Options) http.Handler {
	if opts.Store == nil || opts.Access == nil {
		panic("api.New: a Store and an Access are required")
	}
	l := withDefaults(opts.Limits)
	s := &server{store: opts.Store, access: webview.CachedAccess(opts.Access), agents: opts.Agents, limits: l,
		uploads: make(chan struct{}, l.Uploads), perNamespace: map[string]int{}, counts: opts.Metrics, log: opts.Log, mux: http.NewServeMux(), agentMux: http.NewServeMux()}
	if s.counts == nil {
		s.counts = noMetrics{}
	}
	s.agentMux.HandleFunc("GET /v1/agent/caches/{name}", agentRoute(s.getCache))
	s.agentMux.HandleFunc("PUT /v1/agent/caches/{name}", agentRoute(s.putCache))
	s.mux.HandleFunc("GET /v1/namespaces/{ns}/runs", s.list)
	s.mux.HandleFunc("GET /v1/namespaces/{ns}/runs/{name}", s.get)
	s.mux.HandleFunc("GET /v1/namespaces/{ns}/runs/{name}/logs/{stream}", s.getLog)
	s.mux.HandleFunc("GET /v1/namespaces/{ns}/runs/{name}/artifacts", s.listArtifacts)
	s.mux.HandleFunc("GET /v1/namespaces/{ns}/runs/{name}/artifacts/{path...}", s.getArtifact)
	s.mux.HandleFunc("/", s.unknown)
	return s
}

// ServeHTTP authenticates every request before any route runs, so that without a
// valid token nothing, not even which paths exist, is answered but 401. The agents'
// routes take only agents' tokens, and the readers' only users'.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	if strings.HasPrefix(r.URL.Path, agentPrefix) {
		s.serveAgent(w, r)
		return
	}
	u, err := s.authenticate(r)
	if err != nil {
		if !errors.Is(err, webview.ErrUnauthenticated) {
			s.log.Error(err, "checking a token")
			writeError(w, http.StatusBadGateway, "the cluster could not check the token")
			return
		}
		h.Set("WWW-Authenticate", `Bearer realm="flow-ci"`)
		writeError(w, http.StatusUnauthorized, "a valid Kubernetes bearer token is required")
		return
	}
	s.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
}

type userKey struct{}

// authenticate returns the user of the request's Authorization: Bearer token. Cookies
// are not read: the API is for programs, and without cookies no other site's page can
// make a reader's browser call it.
func (s *server) authenticate(r *http.Request) (webview.User, error) {
	h := r.Header.Get("Authorization")
	if len(h) <= 7 || !strings.EqualFold(h[:7], "bearer ") {
		return webview.User{}, fmt.Errorf("%w: no bearer token", webview.ErrUnauthenticated)
	}
	token := strings.TrimSpace(h[7:])
	if token == "" || len(token) > maxToken {
		return webview.User{}, fmt.Errorf("%w: no token, or one too long", webview.ErrUnauthenticated)
	}
	return s.access.Authenticate(r.Context(), token)
}

// allow says whether the request's user may do verb on resource (/subresource) in
// namespace ns. When not, it has answered: 403, or 502 when the cluster could not say.
func (s *server) allow(w http.ResponseWriter, r *http.Request, ns, verb, resource, subresource string) bool {
	u, _ := r.Context().Value(userKey{}).(webview.User)
	group := ""
	if resource == "pipelineruns" {
		group = v1alpha1.GroupVersion.Group
	}
	ok, err := s.access.Authorize(r.Context(), u, webview.Attributes{Namespace: ns, Verb: verb, Group: group,
		Resource: resource, Subresource: subresource})
	switch {
	case err != nil:
		s.log.Error(err, "checking access", "namespace", ns, "verb", verb, "resource", resource)
		writeError(w, http.StatusBadGateway, "the cluster could not check access")
	case !ok:
		what := resource
		if subresource != "" {
			what += "/" + subresource
		}
		writeError(w, http.StatusForbidden, fmt.Sprintf("you may not %s %s in namespace %s", verb, what, ns))
	}
	return err == nil && ok
}

// unknown answers what no route serves.
func (s *server) unknown(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "the archive is read-only to readers: only GET is served")
		return
	}
	writeError(w, http.StatusNotFound, "no such path: see /v1/namespaces/{namespace}/runs")
}

// storeFailed answers an error of the store: 404 for what it does not hold, and a
// message without the store's detail (paths, queries) for anything else.
func (s *server) storeFailed(w http.ResponseWriter, r *http.Request, err error, notFound string) {
	switch {
	case errors.Is(err, archive.ErrNotFound):
		writeError(w, http.StatusNotFound, notFound)
	case r.Context().Err() != nil:
		// The reader went away; no one reads an answer.
	default:
		s.log.Error(err, "reading the archive", "path", r.URL.Path)
		writeError(w, http.StatusInternalServerError, "the archive could not be read")
	}
}

// writeJSON answers v, encoded before the status is sent so that an encoding error is
// still a 500. HTML is not escaped: the answer is never HTML (its type and nosniff say
// so), and escaping would grow a stored document up to six times.
func (s *server) writeJSON(w http.ResponseWriter, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		s.log.Error(err, "encoding an answer")
		writeError(w, http.StatusInternalServerError, "the archive could not encode its answer")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b.Bytes())
}

func withDefaults(l Limits) Limits {
	d := DefaultLimits()
	for _, f := range []struct{ v, def *int64 }{{&l.FileBytes, &d.FileBytes}, {&l.RunBytes, &d.RunBytes}, {&l.NamespaceBytes, &d.NamespaceBytes}, {&l.CacheBytes, &d.CacheBytes},
		{&l.NamespaceCacheBytes, &d.NamespaceCacheBytes}} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	if l.Uploads <= 0 {
		l.Uploads = d.Uploads
	}
	return l
}

func writeError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(ErrorBody{Error: msg}) // a struct of one string always encodes
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
