package forge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flow-ci/flow-ci/internal/gitsource"
)

const secret = "tok-SECRET-123"

var loopback = gitsource.Egress{Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}

func status() Status {
	return Status{Commit: sha, State: StateSuccess, Context: "flow-ci/build", Description: "ok"}
}

// echoHeaders answers code with a JSON message that repeats every request
// header, in plain and URL-escaped form, as a careless forge might.
func echoHeaders(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var lines []string
		for k, vs := range r.Header {
			for _, v := range vs {
				lines = append(lines, k+": "+v+" "+url.QueryEscape(v))
			}
		}
		sort.Strings(lines)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"message":%q}`, strings.Join(lines, "\n"))
	}
}

func TestPost(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name          string
		p             Provider
		handler       http.HandlerFunc
		wantErr       bool
		wantPermanent bool
		wantRefused   bool // ErrTransitionRefused
		wantText      string
	}{
		{name: "201", p: GitHub, handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(201) }},
		{name: "200 gitlab", p: GitLab, handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) }},
		{name: "500", p: GitHub, handler: echoHeaders(500), wantErr: true, wantText: "HTTP 500"},
		{name: "502 html", p: Gitea, handler: func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(502)
			fmt.Fprint(w, "<html>bad gateway "+secret+"</html>")
		}, wantErr: true, wantText: "HTTP 502"},
		{name: "401 github", p: GitHub, handler: echoHeaders(401), wantErr: true, wantPermanent: true, wantText: "HTTP 401"},
		{name: "401 gitea", p: Gitea, handler: echoHeaders(401), wantErr: true, wantPermanent: true, wantText: "HTTP 401"},
		{name: "401 gitlab", p: GitLab, handler: echoHeaders(401), wantErr: true, wantPermanent: true, wantText: "HTTP 401"},
		{name: "404", p: Gitea, handler: echoHeaders(404), wantErr: true, wantPermanent: true, wantText: "HTTP 404"},
		{name: "422 with message", p: GitHub, handler: func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(422)
			fmt.Fprint(w, `{"message":"No commit found for SHA: x"}`)
		}, wantErr: true, wantPermanent: true, wantText: "HTTP 422 (retrying cannot help): the forge refused the status"},
		{name: "429", p: GitLab, handler: echoHeaders(429), wantErr: true, wantText: "HTTP 429"},
		{name: "408", p: GitLab, handler: echoHeaders(408), wantErr: true, wantText: "HTTP 408"},
		{name: "403 forbidden", p: GitHub, handler: echoHeaders(403), wantErr: true, wantPermanent: true, wantText: "HTTP 403"},
		{name: "403 github rate limit", p: GitHub, handler: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.WriteHeader(403)
		}, wantErr: true, wantText: "HTTP 403"},
		{name: "gitlab same state twice", p: GitLab, handler: func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(400)
			fmt.Fprint(w, `{"message":"Cannot transition status via :run from :running (Reason(s): Status cannot transition via \"run\")"}`)
		}, wantErr: true, wantPermanent: true, wantRefused: true, wantText: "the status already has this state"},
		{name: "gitlab object message", p: GitLab, handler: func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(400)
			fmt.Fprint(w, `{"message":{"name":["is too long"]}}`)
		}, wantErr: true, wantPermanent: true, wantText: "HTTP 400 (retrying cannot help)"},
	}
	c := &Client{Egress: loopback, Timeout: 5 * time.Second}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(tc.handler)
			t.Cleanup(srv.Close)
			err := c.Post(context.Background(), tc.p, srv.URL, srv.URL+"/org/app.git", secret, status())
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("Post: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Post returned nil")
			}
			text := err.Error()
			if strings.Contains(text, "SECRET") {
				t.Errorf("error leaks the token: %s", text)
			}
			if strings.Contains(text, "No commit found") || strings.Contains(text, "is too long") {
				t.Errorf("error repeats the forge's own text: %s", text)
			}
			host := strings.TrimPrefix(srv.URL, "http://")
			if !strings.Contains(text, host) || !strings.Contains(text, tc.wantText) {
				t.Errorf("error %q does not name host %s and %q", text, host, tc.wantText)
			}
			if got := errors.Is(err, ErrPermanent); got != tc.wantPermanent {
				t.Errorf("errors.Is(err, ErrPermanent) = %v; want %v (%v)", got, tc.wantPermanent, err)
			}
			if got := errors.Is(err, ErrTransitionRefused); got != tc.wantRefused {
				t.Errorf("errors.Is(err, ErrTransitionRefused) = %v; want %v", got, tc.wantRefused)
			}
		})
	}
}

func TestPostRedirect(t *testing.T) {
	t.Parallel()
	var contacted atomic.Bool
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		contacted.Store(true)
		w.WriteHeader(201)
	}))
	t.Cleanup(target.Close)
	for _, code := range []int{301, 302, 307, 308} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/steal", code)
		}))
		t.Cleanup(srv.Close)
		c := &Client{Egress: loopback}
		err := c.Post(context.Background(), Gitea, srv.URL, srv.URL+"/org/app.git", secret, status())
		if err == nil || !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "redirect") {
			t.Errorf("%d: err = %v; want a permanent redirect error", code, err)
		}
		if err != nil && strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%d: error leaks the token: %v", code, err)
		}
	}
	if contacted.Load() {
		t.Error("the redirect target was contacted")
	}
}

func TestPostReadsAtMost64KiB(t *testing.T) {
	t.Parallel()
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(201)
		chunk := make([]byte, 64<<10)
		for range 160 { // 10 MiB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		// Then hold the body open: a reader that wants EOF would wait here.
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(done) })

	c := &Client{Egress: loopback, Timeout: time.Minute}
	errc := make(chan error, 1)
	go func() {
		errc <- c.Post(context.Background(), GitHub, srv.URL, "https://github.com/org/app", secret, status())
	}()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Post: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Post kept reading a 10 MiB body")
	}
}

func TestPostReusesConnections(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(201)
		fmt.Fprint(w, `{"id":1}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := &Client{Egress: loopback}
	for range 3 {
		if err := c.Post(context.Background(), GitLab, srv.URL, srv.URL+"/g/app.git", secret, status()); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("3 posts opened %d connections; want 1", n)
	}
}

func TestPostEgressRefused(t *testing.T) {
	t.Parallel()
	var contacted atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		contacted.Store(true)
		w.WriteHeader(201)
	}))
	t.Cleanup(srv.Close)
	c := &Client{}
	err := c.Post(context.Background(), Gitea, srv.URL, srv.URL+"/org/app.git", secret, status())
	if !errors.Is(err, gitsource.ErrAddressNotAllowed) || !errors.Is(err, ErrPermanent) {
		t.Fatalf("err = %v; want ErrAddressNotAllowed and ErrPermanent", err)
	}
	if contacted.Load() {
		t.Error("the refused server was contacted")
	}
}

func TestPostTimeout(t *testing.T) {
	t.Parallel()
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(done) })
	c := &Client{Egress: loopback, Timeout: 200 * time.Millisecond}
	err := c.Post(context.Background(), GitHub, srv.URL, "https://github.com/org/app", secret, status())
	if err == nil || errors.Is(err, ErrPermanent) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v; want a transient timeout", err)
	}
}

func TestPostInvalidInputIsPermanent(t *testing.T) {
	t.Parallel()
	c := &Client{Egress: loopback}
	err := c.Post(context.Background(), "bitbucket", "https://x.example", "https://x.example/o/r", secret, status())
	if !errors.Is(err, ErrPermanent) {
		t.Fatalf("err = %v; want ErrPermanent", err)
	}
}

func TestPostConnectionRefusedIsTransient(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // nothing listens there now
	c := &Client{Egress: loopback}
	err := c.Post(context.Background(), GitHub, base, "https://github.com/o/r", secret, status())
	if err == nil || errors.Is(err, ErrPermanent) || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("err = %v; want a transient error without the token", err)
	}
}

func TestScrub(t *testing.T) {
	t.Parallel()
	tok := "a/b+c="
	cases := map[string]string{
		"token a/b+c= here":                 "token *** here",
		"escaped a%2Fb+c= and a%2Fb%2Bc%3D": "escaped *** and ***",
		"base64 YS9iK2M9":                   "base64 ***",
		"nothing":                           "nothing",
	}
	for in, want := range cases {
		if got := scrub(in, tok); got != want {
			t.Errorf("scrub(%q) = %q; want %q", in, got, want)
		}
	}
}

// The token goes over plain http only to a network the operator allowed by name; the
// default policy's verdict alone (here: a public address) is not enough.
func TestPostPlainHTTPNeedsAnAllowedNetwork(t *testing.T) {
	t.Parallel()
	var contacted atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		contacted.Add(1)
		w.WriteHeader(201)
	}))
	t.Cleanup(srv.Close)
	// Loopback reachable by the default policy's standards, but not named: every
	// address is allowed, none explicitly covers 127.0.0.1.
	everything := gitsource.Egress{Allowed: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	c := &Client{Egress: everything}
	err := c.Post(context.Background(), Gitea, srv.URL, srv.URL+"/org/app.git", secret, status())
	if !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "clear text") {
		t.Fatalf("err = %v; want the clear-text token refused for good", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("the token is in the error: %v", err)
	}
	if contacted.Load() != 0 {
		t.Error("the server was contacted over plain http")
	}
	// Allowed by name: plain http is the operator's choice.
	if err := (&Client{Egress: loopback}).Post(context.Background(), Gitea, srv.URL, srv.URL+"/org/app.git", secret, status()); err != nil {
		t.Fatalf("plain http to an allowed network: %v", err)
	}
	if contacted.Load() != 1 {
		t.Errorf("contacted %d times, want 1", contacted.Load())
	}
}

// The client never asks for compression, so what it reads is bounded as sent.
func TestPostAsksForNoCompression(t *testing.T) {
	t.Parallel()
	var enc atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		enc.Store(r.Header.Get("Accept-Encoding"))
		w.WriteHeader(201)
	}))
	t.Cleanup(srv.Close)
	if err := (&Client{Egress: loopback}).Post(context.Background(), Gitea, srv.URL, srv.URL+"/org/app.git", secret, status()); err != nil {
		t.Fatal(err)
	}
	if got := enc.Load().(string); got != "" {
		t.Errorf("Accept-Encoding = %q, want none", got)
	}
}
