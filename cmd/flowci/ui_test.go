package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/webview"
)

// uiFor serves the web view as user (with groups), as `flowci ui` would with their
// kubeconfig, answering to any host (httptest's).
func uiFor(t *testing.T, user string, groups ...string) *httptest.Server {
	t.Helper()
	return serveUI(t, clientsAs(t, user, groups...), func(*webview.Options) {})
}

func clientsAs(t *testing.T, user string, groups ...string) *clients {
	t.Helper()
	u, err := env.AddUser(envtest.User{Name: user, Groups: groups}, nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := clientsFor(u.Config(), "")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func serveUI(t *testing.T, k *clients, configure func(*webview.Options)) *httptest.Server {
	t.Helper()
	opts := webview.Options{Client: k.c, Logs: k.logs, Namespace: k.namespace}
	configure(&opts)
	srv, err := webview.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts
}

func get(t *testing.T, url string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestUIPages: the pages against a real API server: runs, a run's status tail as
// resumable server-sent events, triggers and their badges, and clear error pages with
// the right status for unknown runs, malformed input and namespaces the viewer may not
// read.
func TestUIPages(t *testing.T) {
	ctx := context.Background()
	ns := env.NewNamespace(t)
	exit := int32(5)
	run := &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shown"},
		Spec: v1alpha1.PipelineRunSpec{RepoURL: "https://git.example/org/app.git", Branch: "main"}}
	if err := env.Client.Create(ctx, run); err != nil {
		t.Fatal(err)
	}
	run.Status = v1alpha1.PipelineRunStatus{Phase: v1alpha1.PhaseFailed, Commit: strings.Repeat("c", 40), ShortCommit: "ccccccc",
		Steps: []v1alpha1.StepStatus{{Name: "fails", Phase: v1alpha1.StepFailed, ExitCode: &exit, Reason: v1alpha1.ReasonStepFailed,
			Message: "+ echo about to fail\nabout to fail\n+ exit 5\n"}}}
	if err := env.Client.Status().Update(ctx, run); err != nil {
		t.Fatal(err)
	}
	trig := &v1alpha1.PipelineTrigger{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
		Spec: v1alpha1.PipelineTriggerSpec{RepoURL: "https://git.example/org/app.git", Branches: []string{"*", "release/*"}}}
	if err := env.Client.Create(ctx, trig); err != nil {
		t.Fatal(err)
	}
	trig.Status.Branches = []v1alpha1.TriggerBranchStatus{{Name: "release/1", Commit: strings.Repeat("d", 40), LastRun: "shown", LastRunPhase: v1alpha1.PhaseSucceeded}}
	if err := env.Client.Status().Update(ctx, trig); err != nil {
		t.Fatal(err)
	}
	admin := uiFor(t, "ui-admin", "system:masters")

	code, body := get(t, admin.URL+"/runs?namespace="+ns)
	if code != 200 || !strings.Contains(body, `href="/runs/`+ns+`/shown"`) || !strings.Contains(body, "ccccccc") {
		t.Errorf("runs list: %d\n%s", code, body)
	}
	code, body = get(t, admin.URL+"/runs?namespace="+ns+"&phase=Running&fragment=1")
	if code != 200 || strings.Contains(body, "shown") {
		t.Errorf("the phase filter: %d\n%s", code, body)
	}
	code, body = get(t, admin.URL+"/runs/"+ns+"/shown")
	if code != 200 || !strings.Contains(body, "exit 5") || !strings.Contains(body, "the log tail kept in the run's status") {
		t.Errorf("run page: %d\n%s", code, body)
	}
	log := admin.URL + "/runs/" + ns + "/shown/steps/0/log"
	code, body = get(t, log)
	want := ": open\n\nevent: source\ndata: status\n\nid: 1\nevent: line\ndata: + echo about to fail\n\nid: 2\nevent: line\ndata: about to fail\n\n"
	if code != 200 || !strings.HasPrefix(body, want) || !strings.HasSuffix(body, "event: end\ndata: Failed\n\n") {
		t.Errorf("status tail as events: %d\n%q", code, body)
	}
	if _, body = get(t, log, "Last-Event-ID", "2"); strings.Contains(body, "about to fail\n\nid") || !strings.Contains(body, "id: 3\nevent: line\ndata: + exit 5") {
		t.Errorf("a reconnect after line 2 got:\n%q", body)
	}
	if code, body = get(t, log+"?format=text"); code != 200 || !strings.HasPrefix(body, "(the step's pods are gone") {
		t.Errorf("text log: %d\n%s", code, body)
	}
	code, body = get(t, admin.URL+"/triggers?namespace="+ns)
	if code != 200 || !strings.Contains(body, `/badge/`+ns+`/app/release/1`) {
		t.Errorf("triggers: %d\n%s", code, body)
	}
	for branch, word := range map[string]string{"release/1": "passing", "main": "unknown"} {
		code, body = get(t, admin.URL+"/badge/"+ns+"/app/"+branch+".svg")
		if code != 200 || !strings.HasPrefix(body, "<svg") || !strings.Contains(body, ">"+word+"<") {
			t.Errorf("badge of %s: %d\n%s", branch, code, body)
		}
	}

	stranger := uiFor(t, "ui-stranger")
	for _, c := range []struct {
		srv    *httptest.Server
		path   string
		status int
		title  string
	}{
		{admin, "/runs/" + ns + "/missing", 404, "Not found"},
		{admin, "/runs?phase=Bogus", 400, "Bad request"},
		{admin, "/runs/Not_A_Namespace/x", 400, "Bad request"},
		{admin, "/runs/" + ns + "/shown/steps/7/log", 400, "Bad request"},
		{admin, "/runs/" + ns + "/shown/steps/x/log", 400, "Bad request"},
		{admin, "/badge/" + ns + "/nope/main.svg", 404, "Not found"},
		{stranger, "/runs?namespace=" + ns, 403, "Not allowed"},
		{stranger, "/runs/" + ns + "/shown", 403, "Not allowed"},
	} {
		code, body := get(t, c.srv.URL+c.path)
		if code != c.status || !strings.Contains(body, "<h1>"+c.title+"</h1>") || strings.Contains(body, "goroutine") {
			t.Errorf("%s: %d, want %d and a page titled %q\n%s", c.path, code, c.status, c.title, body)
		}
	}
}
