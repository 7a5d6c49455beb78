package gittest

import (
	"crypto/subtle"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// HTTPOptions configures NewHTTPServer.
type HTTPOptions struct {
	// Username and Password, when Password is set, make the server require
	// HTTP basic auth with exactly these credentials.
	Username, Password string
	// TLS serves HTTPS with a self-signed certificate (see HTTPServer.CACert).
	TLS bool
}

// HTTPServer serves every bare repository under Root over the smart HTTP
// protocol with the real `git http-backend`.
type HTTPServer struct {
	URL    string // base URL, without a trailing slash
	Root   string
	CACert []byte // PEM certificate to trust when TLS is on
}

// NewHTTPServer starts a git HTTP server on loopback exporting root; it is
// closed when the test ends.
func NewHTTPServer(t testing.TB, root string, opts HTTPOptions) *HTTPServer {
	t.Helper()
	backend := &cgi.Handler{
		Path: filepath.Join(execPath(t), "git-http-backend"),
		Root: "/",
		Env: append(Env(),
			"GIT_PROJECT_ROOT="+root,
			"GIT_HTTP_EXPORT_ALL=1",
		),
		// Refusals such as "not our ref" are part of what tests provoke.
		Stderr: io.Discard,
	}
	var h http.Handler = backend
	if opts.Password != "" {
		h = basicAuth(backend, opts.Username, opts.Password)
	}

	s := &HTTPServer{Root: root}
	var srv *httptest.Server
	if opts.TLS {
		srv = httptest.NewTLSServer(h)
		s.CACert = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// RepoURL is the clone URL of r on this server.
func (s *HTTPServer) RepoURL(r *Repo) string { return s.URL + "/" + r.Name }

func basicAuth(next http.Handler, user, pass string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(user)) != 1 ||
			subtle.ConstantTimeCompare([]byte(p), []byte(pass)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

var (
	execPathOnce sync.Once
	execPathDir  string
	execPathErr  error
)

// execPath is `git --exec-path`, where git-http-backend lives.
func execPath(t testing.TB) string {
	t.Helper()
	execPathOnce.Do(func() {
		out, err := exec.Command("git", "--exec-path").Output()
		execPathDir, execPathErr = strings.TrimSpace(string(out)), err
	})
	if execPathErr != nil {
		t.Fatalf("git --exec-path: %v", execPathErr)
	}
	return execPathDir
}

// NewSilentServer listens on loopback, accepts TCP connections and never
// writes a byte: a stand-in for a hung server. It returns "127.0.0.1:port".
func NewSilentServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}
