package gittest

import (
	"compress/gzip"
	"crypto/subtle"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/flow-ci/flow-ci/internal/gitserver"
)

// HTTPOptions configures NewHTTPServer.
type HTTPOptions struct {
	// Username and Password, when Password is set, make the server require
	// HTTP basic auth with exactly these credentials.
	Username, Password string
	// TLS serves HTTPS with a self-signed certificate (see HTTPServer.CACert).
	TLS bool
	// Gzip compresses every answer (Content-Encoding: gzip) whether the client asked
	// for it or not, as some servers and proxies do.
	Gzip bool
	// Addr is the listen address; loopback on a free port when empty. The e2e tests
	// listen on the cluster bridge's gateway so that pods can clone.
	Addr string
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
	backend, err := gitserver.NewHandler(root)
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = backend
	if opts.Password != "" {
		h = basicAuth(h, opts.Username, opts.Password)
	}
	if opts.Gzip {
		h = gzipAll(h)
	}

	s := &HTTPServer{Root: root}
	srv := httptest.NewUnstartedServer(h)
	if opts.Addr != "" {
		ln, err := net.Listen("tcp", opts.Addr)
		if err != nil {
			t.Fatalf("listen on %s: %v", opts.Addr, err)
		}
		_ = srv.Listener.Close()
		srv.Listener = ln
	}
	if opts.TLS {
		// httptest's own certificate names only loopback; make one for the real address.
		host, _, _ := net.SplitHostPort(srv.Listener.Addr().String())
		cert, certPEM := selfSignedCert(t, host)
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		srv.StartTLS()
		s.CACert = certPEM
	} else {
		srv.Start()
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

// NewSilentServer listens on loopback, accepts TCP connections and never
// writes a byte: a stand-in for a hung server. It returns "127.0.0.1:port".
func NewSilentServer(t testing.TB) string {
	t.Helper()
	return NewSilentServerOn(t, "127.0.0.1:0")
}

// NewSilentServerOn is NewSilentServer listening on addr, such as the cluster bridge's
// gateway, where pods and the operator reach it. It returns the address it listens on.
func NewSilentServerOn(t testing.TB, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
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

// gzipAll compresses every response body.
func gzipAll(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		defer zw.Close()
		next.ServeHTTP(gzipWriter{ResponseWriter: w, zw: zw}, r)
	})
}

type gzipWriter struct {
	http.ResponseWriter
	zw *gzip.Writer
}

func (g gzipWriter) Write(p []byte) (int, error) {
	g.Header().Del("Content-Length") // the handler's length is the plain body's
	return g.zw.Write(p)
}

func (g gzipWriter) WriteHeader(code int) {
	g.Header().Del("Content-Length")
	g.ResponseWriter.WriteHeader(code)
}

func (g gzipWriter) Flush() {
	_ = g.zw.Flush()
	if f, ok := g.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
