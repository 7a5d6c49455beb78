package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers/access"
	"github.com/flow-ci/flow-ci/internal/webview"
)

var readRuns = rbacv1.PolicyRule{APIGroups: []string{"ci.flowci.dev"}, Resources: []string{"pipelineruns", "pipelinetriggers"}, Verbs: []string{"get", "list", "watch"}}
var readLogs = rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}}

// TestInClusterWebViewAccess: the in-cluster web view reads with its own identity but
// serves each request only what its token's user may read: no token or a bad one is
// 401, another namespace 403, a list of every namespace only the reader's, a step log
// only with get on pods/log; a token signed in on the login page travels in an
// HttpOnly, SameSite=Strict cookie, and the sign-in form must come from the site.
func TestInClusterWebViewAccess(t *testing.T) {
	ctx := context.Background()
	mine, theirs := env.NewNamespace(t), env.NewNamespace(t)
	for _, ns := range []string{mine, theirs} {
		run := &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "run-in-" + ns},
			Spec: v1alpha1.PipelineRunSpec{RepoURL: "https://git.example/org/app.git"}}
		if err := env.Client.Create(ctx, run); err != nil {
			t.Fatal(err)
		}
		run.Status = v1alpha1.PipelineRunStatus{Phase: v1alpha1.PhaseFailed,
			Steps: []v1alpha1.StepStatus{{Name: "s", Phase: v1alpha1.StepFailed, Message: "secret build output of " + ns}}}
		if err := env.Client.Status().Update(ctx, run); err != nil {
			t.Fatal(err)
		}
	}
	reader := env.ServiceAccountToken(t, mine, "reader", readRuns, readLogs)
	noLogs := env.ServiceAccountToken(t, mine, "no-logs", readRuns)
	stranger := env.ServiceAccountToken(t, theirs, "stranger")
	// The server's own identity may read everything; the reviews decide what it shows.
	server := clientsAs(t, "ui-server", "system:masters")
	ui := serveUI(t, server, func(o *webview.Options) { o.Access = access.New(server.kube) })

	bearer := func(token string) []string { return []string{"Authorization", "Bearer " + token} }
	for _, c := range []struct {
		name, path string
		header     []string
		status     int
		has, lacks string
	}{
		{"no token", "/runs?namespace=" + mine, nil, 401, "Sign in", "run-in-"},
		{"a bad token", "/runs?namespace=" + mine, bearer("not-a-token"), 401, "Sign in", "run-in-"},
		{"a badge with no token", "/badge/" + mine + "/x/main.svg", nil, 401, "401", "<svg"},
		{"a stranger's token", "/runs/" + mine + "/run-in-" + mine, bearer(stranger), 403, "Not allowed", "secret build output"},
		{"a stranger's log", "/runs/" + mine + "/run-in-" + mine + "/steps/0/log?format=text", bearer(stranger), 403, "Not allowed", "secret build output"},
		{"the reader's namespace", "/runs?namespace=" + mine, bearer(reader), 200, "run-in-" + mine, ""},
		{"another namespace", "/runs?namespace=" + theirs, bearer(reader), 403, "Not allowed", "run-in-" + theirs},
		{"every namespace is the reader's", "/runs", bearer(reader), 200, "run-in-" + mine, "run-in-" + theirs},
		{"another namespace's run", "/runs/" + theirs + "/run-in-" + theirs, bearer(reader), 403, "Not allowed", "secret"},
		{"a missing run elsewhere is 403, not 404", "/runs/" + theirs + "/nope", bearer(reader), 403, "Not allowed", ""},
		{"the reader's log", "/runs/" + mine + "/run-in-" + mine + "/steps/0/log?format=text", bearer(reader), 200, "secret build output of " + mine, ""},
		{"a log without pods/log", "/runs/" + mine + "/run-in-" + mine + "/steps/0/log?format=text", bearer(noLogs), 403, "pods/log", "secret build output"},
	} {
		code, body := get(t, ui.URL+c.path, c.header...)
		if code != c.status || !strings.Contains(body, c.has) || (c.lacks != "" && strings.Contains(body, c.lacks)) {
			t.Errorf("%s: %s: %d, want %d with %q and without %q\n%s", c.name, c.path, code, c.status, c.has, c.lacks, body)
		}
	}

	// Signing in: the token goes into a cookie scripts cannot read and other sites'
	// requests do not carry.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(origin, token string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, ui.URL+"/login", strings.NewReader(url.Values{"token": {token}, "next": {"//evil.example/"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp
	}
	if resp := post("https://evil.example", reader); resp.StatusCode != 403 || len(resp.Cookies()) > 0 {
		t.Errorf("a sign-in from another site: %d %v", resp.StatusCode, resp.Cookies())
	}
	if resp := post(ui.URL, "not-a-token"); resp.StatusCode != 401 || len(resp.Cookies()) > 0 {
		t.Errorf("a sign-in with a bad token: %d %v", resp.StatusCode, resp.Cookies())
	}
	resp := post(ui.URL, reader)
	cookies := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/runs" || len(cookies) != 1 ||
		!cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("sign-in: %d to %q, cookies %+v", resp.StatusCode, resp.Header.Get("Location"), cookies)
	}
	if code, body := get(t, ui.URL+"/runs?namespace="+mine, "Cookie", cookies[0].Name+"="+cookies[0].Value); code != 200 || !strings.Contains(body, "Sign out") {
		t.Errorf("with the cookie: %d\n%s", code, body)
	}
}

// TestLocalWebViewHosts: flowci ui answers only to its own loopback names, so a page of
// another site that resolves its name to 127.0.0.1 (DNS rebinding) reads nothing; and
// no page may be framed.
func TestLocalWebViewHosts(t *testing.T) {
	k := clientsAs(t, "ui-local", "system:masters")
	ui := httptest.NewUnstartedServer(nil)
	ui.Start()
	t.Cleanup(ui.Close)
	port := ui.Listener.Addr().(*net.TCPAddr).Port
	ui.Config.Handler = mustServer(t, webview.Options{Client: k.c, Logs: k.logs, Hosts: webview.LoopbackHosts(ui.Listener.Addr())})
	for host, want := range map[string]int{
		fmt.Sprintf("127.0.0.1:%d", port): 200, fmt.Sprintf("localhost:%d", port): 200, fmt.Sprintf("[::1]:%d", port): 200,
		fmt.Sprintf("rebind.attacker.example:%d", port): http.StatusMisdirectedRequest, "127.0.0.1:1": http.StatusMisdirectedRequest,
	} {
		req, _ := http.NewRequest(http.MethodGet, ui.URL+"/runs", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("Host %s: may be framed: CSP %q", host, csp)
		}
	}
}

func mustServer(t *testing.T, o webview.Options) http.Handler {
	t.Helper()
	s, err := webview.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestLiveLogStreamsAreBounded: a reader may hold a bounded number of live log streams,
// and a stream that gets no line ends after the idle deadline (the browser reconnects).
func TestLiveLogStreamsAreBounded(t *testing.T) {
	ctx := context.Background()
	ns := env.NewNamespace(t)
	run := &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "waiting"},
		Spec: v1alpha1.PipelineRunSpec{RepoURL: "https://git.example/org/app.git"}}
	if err := env.Client.Create(ctx, run); err != nil {
		t.Fatal(err)
	}
	run.Status = v1alpha1.PipelineRunStatus{Phase: v1alpha1.PhaseRunning, Steps: []v1alpha1.StepStatus{{Name: "s", Phase: v1alpha1.StepPending}}}
	if err := env.Client.Status().Update(ctx, run); err != nil {
		t.Fatal(err)
	}
	k := clientsAs(t, "ui-streams", "system:masters")
	ui := serveUI(t, k, func(o *webview.Options) { o.MaxStreamsPerUser, o.StreamIdle = 1, 3*time.Second })
	log := ui.URL + "/runs/" + ns + "/waiting/steps/0/log"
	first, err := http.Get(log)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = first.Body.Close() }()
	if code, _ := get(t, log); code != http.StatusTooManyRequests {
		t.Errorf("a second live stream of one reader: %d, want 429", code)
	}
	done := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, first.Body); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("an idle stream was not ended")
	}
	if code, _ := get(t, log+"?format=text"); code != 200 {
		t.Errorf("after the stream ended: %d", code)
	}
}
