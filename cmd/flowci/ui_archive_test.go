package main

import (
	"context"
	"fmt"
	"html"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers/access"
	"github.com/flow-ci/flow-ci/internal/archive"
	"github.com/flow-ci/flow-ci/internal/webview"
)

// archivedWebRuns stores, in ns: goneRun (every log, a step's two pods, one cut short)
// with a step log of 2000 lines, far past the tail status keeps; 53 older runs with
// records only; and a record of live, a run the cluster still holds.
func archivedWebRuns(t *testing.T, a *testArchive, ns string, live *v1alpha1.PipelineRun) (longLog string) {
	t.Helper()
	var b strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&b, "lint line %d <b>not markup</b>\n", i)
	}
	logs := append([]storedLog{}, goneLogs...)
	logs[1] = storedLog{"step-0-l1111", []byte(b.String()), archive.LogState{Done: true, LastTime: t0}}
	a.put(t, ns, "uid-gone", logs...)
	run := goneRun(ns)
	run.Spec.Branch = "release"
	a.record(t, run, "name: app\nsteps:\n- name: lint\n", corev1.Event{Type: "Warning", Reason: v1alpha1.ReasonStepFailed,
		Message: `step "test" failed with exit code 3`, Count: 1, LastTimestamp: metav1.NewTime(t0.Add(time.Minute))})
	for i := range 53 {
		if err := a.store.PutRecord(context.Background(), archive.Record{UID: fmt.Sprintf("uid-old-%02d", i), Namespace: ns,
			Name: fmt.Sprintf("old-%02d", i), RepoURL: run.Spec.RepoURL, Branch: "main", Phase: "Succeeded",
			Created: t0.Add(-time.Duration(53-i) * time.Hour), Doc: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	a.put(t, ns, string(live.UID), storedLog{"step-0-v1111", []byte("live's whole log\n"), archive.LogState{Done: true, LastTime: t0}})
	a.record(t, live, "")
	return b.String()
}

// liveFinishedRun creates a finished run in ns whose first step's pods are gone (its
// log is archived) and whose second step's log the archive does not have.
func liveFinishedRun(t *testing.T, ns string) *v1alpha1.PipelineRun {
	t.Helper()
	ctx := context.Background()
	run := &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "live"},
		Spec: v1alpha1.PipelineRunSpec{RepoURL: "https://git.example/org/app.git", Branch: "main"}}
	if err := env.Client.Create(ctx, run); err != nil {
		t.Fatal(err)
	}
	run.Status = v1alpha1.PipelineRunStatus{Phase: v1alpha1.PhaseFailed, Steps: []v1alpha1.StepStatus{
		{Name: "build", Phase: v1alpha1.StepSucceeded},
		{Name: "check", Index: 1, Phase: v1alpha1.StepFailed, Message: "check's tail\n"},
	}}
	if err := env.Client.Status().Update(ctx, run); err != nil {
		t.Fatal(err)
	}
	return run
}

// TestWebViewArchive: flowci ui with the archive, read with the user's own kubeconfig
// token: the runs list goes on with the archived runs (not those the cluster still
// holds), filtered as the live ones and a page at a time; a deleted run's page is its
// record (steps, what is missing, events, the pipeline file) with its clone's and
// steps' whole logs; a live run's step whose pods are gone shows its archived log,
// and the "pods are gone" note is left for what the archive does not have.
func TestWebViewArchive(t *testing.T) {
	ns := env.NewNamespace(t)
	a := newTestArchive(t, true)
	live := liveFinishedRun(t, ns)
	longLog := archivedWebRuns(t, a, ns, live)
	kube := newKubeFlags()
	*kube.config.KubeConfig = kubeconfig(t, &clientcmdapi.AuthInfo{Token: env.ServiceAccountToken(t, ns, "viewer", cliReader...)})
	kube.archive.namespace = a.ns
	k, err := kube.clients()
	if err != nil {
		t.Fatal(err)
	}
	arch, err := uiArchive(context.Background(), kube, k, false)
	if err != nil {
		t.Fatal(err)
	}
	ui := serveUI(t, k, func(o *webview.Options) { o.Archive = arch })

	code, body := get(t, ui.URL+"/runs?namespace="+ns)
	order := []string{`href="/runs/` + ns + `/live"`, `id="archived"`, `href="/runs/` + ns + `/gone?uid=uid-gone"`,
		`href="/runs/` + ns + `/old-52?uid=uid-old-52"`, `href="/runs/` + ns + `/old-05?uid=uid-old-05"`, "Older archived runs"}
	if code != 200 || !inOrder(body, order...) || strings.Contains(body, "?uid="+string(live.UID)) || strings.Contains(body, "old-04") {
		t.Fatalf("runs list: %d, want in order %q, without live's record and past the page\n%s", code, order, body)
	}
	next := html.UnescapeString(regexp.MustCompile(`href="(/runs\?[^"]*after=[^"]*)#archived"`).FindStringSubmatch(body)[1])
	code, body = get(t, ui.URL+next)
	if code != 200 || !inOrder(body, "old-04", "old-00") || strings.Contains(body, "old-05") || strings.Contains(body, `/runs/`+ns+`/live"`) ||
		strings.Contains(body, "Older archived runs") {
		t.Errorf("the next page: %d, want old-04 to old-00 only\n%s", code, body)
	}
	code, body = get(t, ui.URL+"/runs?namespace="+ns+"&branch=release")
	if code != 200 || !strings.Contains(body, "uid=uid-gone") || strings.Contains(body, "old-") {
		t.Errorf("the branch filter on archived runs: %d\n%s", code, body)
	}

	code, body = get(t, ui.URL+"/runs/"+ns+"/gone")
	for _, want := range []string{"Failed", strings.Repeat("c", 40), "exit 3", "UID <code>uid-gone</code>",
		`data-log="/runs/` + ns + `/gone/clone/log?uid=uid-gone"`, `data-log="/runs/` + ns + `/gone/steps/1/log?uid=uid-gone"`,
		"(from the run archive)", "which could not store all of it: everything after byte 29", "failed with exit code 3",
		"name: app\nsteps:\n- name: lint"} {
		if code != 200 || !strings.Contains(html.UnescapeString(body), want) {
			t.Errorf("the deleted run's page: %d, lacks %q\n%s", code, want, body)
		}
	}
	if strings.Contains(body, "its pods are gone") {
		t.Errorf("the deleted run's page says pods are gone of a step the archive has:\n%s", body)
	}
	for path, want := range map[string]string{
		"/runs/" + ns + "/gone/steps/0/log?uid=uid-gone&format=text": "(from the run archive)\n" + longLog,
		"/runs/" + ns + "/gone/steps/1/log?uid=uid-gone&format=text": "(from the run archive)\nattempt 1 until its eviction\n" +
			"(the run archive could not store all of this log: " + goneLogs[2].state.Missing + ")\n── attempt 2 of 2 ──\nattempt 2\n--- FAIL: TestX\n",
		"/runs/" + ns + "/gone/clone/log?uid=uid-gone&format=text": "(from the run archive)\nCloning into '/workspace'...\n",
		"/runs/" + ns + "/live/steps/0/log?format=text":            "(from the run archive)\nlive's whole log\n",
		"/runs/" + ns + "/live/steps/1/log?format=text":            "(the step's pods are gone: this is the log tail kept in the run's status)\ncheck's tail\n",
	} {
		if code, body := get(t, ui.URL+path); code != 200 || body != want {
			t.Errorf("%s: %d\n%.300q\nwant\n%.300q", path, code, body, want)
		}
	}
	_, body = get(t, ui.URL+"/runs/"+ns+"/gone/steps/1/log?uid=uid-gone", "Last-Event-ID", "2")
	if !strings.HasPrefix(body, ": open\n\nevent: source\ndata: archive\n\nid: 3\nevent: line\ndata: ── attempt 2 of 2 ──\n\n") ||
		!strings.HasSuffix(body, "id: 5\nevent: line\ndata: --- FAIL: TestX\n\nevent: end\ndata: Failed\n\n") {
		t.Errorf("the archived log as events, resumed after line 2:\n%q", body)
	}
	code, body = get(t, ui.URL+"/runs/"+ns+"/live")
	if code != 200 || !inOrder(body, `id="step-0"`, "(from the run archive)", `id="step-1"`, "its pods are gone: the log tail kept in the run's status") ||
		strings.Count(body, "its pods are gone") != 1 {
		t.Errorf("the live run's page: %d\n%s", code, body)
	}
	if code, body := get(t, ui.URL+"/runs/"+ns+"/never"); code != 404 || !strings.Contains(body, "<h1>Not found</h1>") {
		t.Errorf("a run neither live nor archived: %d\n%s", code, body)
	}
	if code, _ := get(t, ui.URL+"/runs/"+ns+"/gone?uid=NOT-A-UID"); code != 400 {
		t.Errorf("a malformed uid: %d", code)
	}
}

// TestInClusterWebViewArchive: the in-cluster web view reaches the archive by its
// Service's variables, verifying the Service's name, and reads it with each reader's
// own token (its client carries none of its own): a reader of runs and logs sees the
// archived runs and their logs, a reader without pods/log the record but not the logs,
// a stranger nothing; a list of every namespace says to choose one for archived runs.
func TestInClusterWebViewArchive(t *testing.T) {
	mine, theirs := env.NewNamespace(t), env.NewNamespace(t)
	a := newTestArchive(t, false)
	live := liveFinishedRun(t, mine)
	archivedWebRuns(t, a, mine, live)
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(a.srv.URL, "https://"))
	t.Setenv(archiveServiceEnv+"HOST", host)
	t.Setenv(archiveServiceEnv+"PORT", port)
	server := clientsAs(t, "ui-archive-server", "system:masters")
	kube := newKubeFlags()
	kube.archive.namespace = a.ns
	arch, err := uiArchive(context.Background(), kube, server, true)
	if err != nil {
		t.Fatal(err)
	}
	ui := serveUI(t, server, func(o *webview.Options) { o.Access, o.Archive = access.New(server.kube), arch })
	reader := env.ServiceAccountToken(t, mine, "reader", readRuns, readLogs)
	noLogs := env.ServiceAccountToken(t, mine, "no-logs", readRuns)
	stranger := env.ServiceAccountToken(t, theirs, "stranger", readRuns, readLogs)
	bearer := func(token string) []string { return []string{"Authorization", "Bearer " + token} }
	gone := "/runs/" + mine + "/gone"
	for _, c := range []struct {
		name, path string
		token      string
		status     int
		has, lacks string
	}{
		{"the reader's list", "/runs?namespace=" + mine, reader, 200, "uid=uid-gone", "the run archive:"},
		{"every namespace", "/runs", reader, 200, "Archived runs are listed by namespace", "uid=uid-gone"},
		{"the reader's archived run", gone, reader, 200, "UID <code>uid-gone</code>", ""},
		{"the reader's archived log", gone + "/steps/1/log?uid=uid-gone&format=text", reader, 200, "attempt 2\n--- FAIL: TestX", ""},
		{"an archived run without pods/log", gone, noLogs, 200, "exit 3", ""},
		{"an archived log without pods/log", gone + "/steps/1/log?uid=uid-gone&format=text", noLogs, 403, "pods/log", "FAIL: TestX"},
		{"an archived clone log without pods/log", gone + "/clone/log?uid=uid-gone&format=text", noLogs, 403, "pods/log", "Cloning"},
		{"a stranger's list", "/runs?namespace=" + mine, stranger, 403, "Not allowed", "uid-gone"},
		{"a stranger and an archived run", gone + "?uid=uid-gone", stranger, 403, "Not allowed", "exit 3"},
		{"no token", gone, "", 401, "Sign in", "exit 3"},
	} {
		var header []string
		if c.token != "" {
			header = bearer(c.token)
		}
		code, body := get(t, ui.URL+c.path, header...)
		if code != c.status || !strings.Contains(body, c.has) || (c.lacks != "" && strings.Contains(body, c.lacks)) {
			t.Errorf("%s: %s: %d, want %d with %q and without %q\n%s", c.name, c.path, code, c.status, c.has, c.lacks, body)
		}
	}
}

// inOrder reports whether s holds each of parts, one after the other.
func inOrder(s string, parts ...string) bool {
	for _, p := range parts {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return true
}
