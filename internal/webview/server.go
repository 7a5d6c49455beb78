// Package webview is flow-ci's read-only web view: the runs, a run with its step logs
// (live while the step runs, as resumable server-sent events), and the triggers with
// their badges. The same server runs on a developer's machine (flowci ui, reading with
// their kubeconfig) and in the cluster (config/ui, reading with its own ServiceAccount).
// In the cluster every request is authenticated with a Kubernetes token and every
// namespace authorized for its reader (Access); on a laptop the server answers only to
// its own host names, so another web page cannot read it through DNS rebinding.
//
// It takes its clients from the caller (narrow interfaces); it builds none.
package webview

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/internal/archive"
	"github.com/flow-ci/flow-ci/internal/podlogs"
)

//go:embed ui
var uiFiles embed.FS

// Defaults of the live log streams.
const (
	DefaultMaxStreams        = 200
	DefaultMaxStreamsPerUser = 12
	DefaultStreamIdle        = 10 * time.Minute
)

// Options configure a Server.
type Options struct {
	// Client reads runs, triggers and definitions, and watches runs for live logs:
	// with the user's own credentials on a laptop, the web view's ServiceAccount in a
	// cluster.
	Client client.WithWatch
	// Logs picks step pods and reads their logs, with the same credentials.
	Logs podlogs.Reader
	// Namespace is the lists' default namespace; "" lists every namespace.
	Namespace string
	// Access authenticates each request and authorizes each namespace it reads. Nil
	// serves the one user whose credentials Client carries (flowci ui), and no one else.
	Access Access
	// Hosts, when set, are the only Host header values answered (host:port): flowci ui
	// names its own loopback addresses, so a page of another site that resolves its
	// name to 127.0.0.1 is refused. Empty answers any (behind a proxy, with Access).
	Hosts []string
	// Archive, when set, is the run archive: the runs list goes on with the runs it
	// keeps, a run gone from the cluster has its page from its record, and a step whose
	// pods are gone shows its whole log from it.
	Archive Archive
	// MaxStreams and MaxStreamsPerUser bound the live log streams open at once, and
	// StreamIdle closes one that got no line for that long (the browser reconnects).
	MaxStreams, MaxStreamsPerUser int
	StreamIdle                    time.Duration
}

// Server serves the web view.
type Server struct {
	opts    Options
	pages   *template.Template
	mux     *http.ServeMux
	hosts   map[string]bool
	streams *streamLimit
}

// New returns the web view's handler.
func New(opts Options) (*Server, error) {
	if opts.Client == nil {
		return nil, errors.New("webview: no client")
	}
	if opts.MaxStreams <= 0 {
		opts.MaxStreams = DefaultMaxStreams
	}
	if opts.MaxStreamsPerUser <= 0 {
		opts.MaxStreamsPerUser = DefaultMaxStreamsPerUser
	}
	if opts.StreamIdle <= 0 {
		opts.StreamIdle = DefaultStreamIdle
	}
	if opts.Access != nil {
		opts.Access = cached(opts.Access, decisionTTL, maxDecisions)
	}
	pages, err := template.New("").Funcs(templateFuncs).ParseFS(uiFiles, "ui/*.html")
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, pages: pages, mux: http.NewServeMux(), hosts: map[string]bool{},
		streams: &streamLimit{max: opts.MaxStreams, perUser: opts.MaxStreamsPerUser, open: map[string]int{}}}
	for _, h := range opts.Hosts {
		s.hosts[strings.ToLower(h)] = true
	}
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/runs", http.StatusFound) })
	s.mux.HandleFunc("GET /runs", s.runs)
	s.mux.HandleFunc("GET /runs/{ns}/{name}", s.run)
	s.mux.HandleFunc("GET /runs/{ns}/{name}/steps/{step}/log", s.stepLog)
	s.mux.HandleFunc("GET /runs/{ns}/{name}/clone/log", s.cloneLog)
	s.mux.HandleFunc("GET /runs/{ns}/{name}/artifacts/{path...}", s.artifact)
	s.mux.HandleFunc("GET /triggers", s.triggers)
	s.mux.HandleFunc("GET /badge/{ns}/{trigger}/{branch...}", s.badge)
	s.mux.HandleFunc("GET /login", s.loginPage)
	s.mux.HandleFunc("POST /login", s.login)
	s.mux.HandleFunc("POST /logout", s.logout)
	static, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		return nil, err
	}
	s.mux.Handle("GET /static/", http.FileServerFS(static))
	return s, nil
}

// ServeHTTP sets the headers every answer carries, refuses a Host it does not serve,
// and, in a cluster, authenticates the request before any page runs. The login page
// and the stylesheet and script need no token.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self'; frame-ancestors 'none'; form-action 'self'")
	if len(s.hosts) > 0 && !s.hosts[strings.ToLower(r.Host)] {
		s.render(w, http.StatusMisdirectedRequest, "error.html", map[string]any{"Title": "Wrong host",
			"Message": fmt.Sprintf("This web view answers to %s only.", strings.Join(s.opts.Hosts, ", "))})
		return
	}
	if s.opts.Access == nil || strings.HasPrefix(r.URL.Path, "/static/") || r.URL.Path == "/login" {
		s.mux.ServeHTTP(w, r)
		return
	}
	u, err := s.authenticate(r)
	if err != nil {
		s.unauthenticated(w, r, err)
		return
	}
	s.mux.ServeHTTP(w, r.WithContext(withUser(r.Context(), u)))
}

// render writes a page; a template error is a short page, never a stack trace.
func (s *Server) render(w http.ResponseWriter, status int, page string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := s.pages.ExecuteTemplate(w, page, data); err != nil {
		fmt.Fprintf(w, "<p>could not render this page</p>")
	}
}

// fail shows a clear error page with the right status: 404 for what does not exist,
// 403 for what the viewer may not read, 400 for malformed input, 429 for too many
// streams, 502 otherwise.
func (s *Server) fail(w http.ResponseWriter, err error) {
	status, title := http.StatusBadGateway, "The cluster did not answer"
	var bad badRequest
	switch {
	case errors.As(err, &bad):
		status, title = http.StatusBadRequest, "Bad request"
	case errors.Is(err, ErrForbidden), apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		status, title = http.StatusForbidden, "Not allowed"
	case errors.Is(err, errTooManyStreams):
		status, title = http.StatusTooManyRequests, "Too many live logs"
	case apierrors.IsNotFound(err), errors.Is(err, archive.ErrNotFound):
		status, title = http.StatusNotFound, "Not found"
	case errors.As(err, new(archiveFailed)):
		title = "The run archive did not answer"
	}
	s.render(w, status, "error.html", map[string]any{"Title": title, "Status": status, "Message": err.Error()})
}

// badRequest is malformed input from the URL.
type badRequest struct{ msg string }

func (b badRequest) Error() string { return b.msg }

// checkUID refuses a uid= that is not a Kubernetes UID (lowercase letters, digits and
// dashes).
func checkUID(uid string) error {
	ok := len(uid) <= 128 && strings.TrimFunc(uid, func(r rune) bool {
		return 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-'
	}) == ""
	if !ok {
		return badRequest{fmt.Sprintf("uid %.80q is not a run's UID", uid)}
	}
	return nil
}

// checkName refuses a namespace or object name that cannot exist.
func checkName(kind, v string, optional bool) error {
	if v == "" && optional {
		return nil
	}
	if errs := validation.IsDNS1123Subdomain(v); len(errs) > 0 {
		return badRequest{fmt.Sprintf("%s %q is not a valid name", kind, v)}
	}
	return nil
}

func firstError(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// LoopbackHosts are the Host values a server listening on addr answers to when it
// serves one user on this machine: localhost, 127.0.0.1 and [::1], with addr's port.
func LoopbackHosts(addr net.Addr) []string {
	_, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return nil
	}
	return []string{net.JoinHostPort("localhost", port), net.JoinHostPort("127.0.0.1", port), net.JoinHostPort("::1", port)}
}
