package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/flow-ci/flow-ci/internal/archive/api"
	"github.com/flow-ci/flow-ci/internal/archive/client"
)

// call sends method path with token ("" for none) and returns the status, headers and
// body.
func call(t *testing.T, f *fixture, method, path, token string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// TestAccess: every answer is the reader's to have. Without a valid token nothing is
// answered but 401; a list needs list on pipelineruns, a record get on pipelineruns, a
// log get on pods/log, each in the run's namespace; another namespace is 403 whether
// or not the run exists there; malformed input is 400 with a message that says what.
func TestAccess(t *testing.T) {
	f := newFixture(t)
	const a, b = "/v1/namespaces/team-a/runs", "/v1/namespaces/team-b/runs"
	for _, tc := range []struct {
		name, token, path string
		status            int
		has, lacks        string
	}{
		{"no token", "", a, 401, "bearer token", "build"},
		{"a bad token", "not-a-token", a + "/build", 401, "bearer token", "build"},
		{"no token on a path that does not exist", "", "/v2/x", 401, "bearer token", ""},
		{"the cluster cannot review the token", "t-down", a, 502, "could not check the token", "10.0.0.1"},
		{"a list", "t-list", a, 200, `"u-r-5"`, "u-secret"},
		{"a list without list", "t-get", a, 403, "you may not list pipelineruns in namespace team-a", "u-"},
		{"a list of another namespace", "t-admin", b, 403, "namespace team-b", "u-secret"},
		{"a record", "t-get", a + "/build", 200, `"uid":"u-build-new"`, "u-build-old"},
		{"a record by UID", "t-get", a + "/build?uid=u-build-old", 200, `"record":{"old":true}`, "u-build-new"},
		{"a record without get", "t-list", a + "/build", 403, "you may not get pipelineruns", "u-build"},
		{"a record with only pods/log", "t-logs", a + "/build", 403, "you may not get pipelineruns", "u-build"},
		{"a record of another namespace", "t-admin", b + "/secret", 403, "namespace team-b", "secret\""},
		{"another namespace's UID under a name here", "t-admin", a + "/build?uid=u-secret", 404, "no such run", "team-b"},
		{"another namespace's UID under its name", "t-admin", a + "/secret?uid=u-secret", 404, "no such run", "team-b"},
		{"a missing run", "t-admin", a + "/nope", 404, "no such run", ""},
		{"a log", "t-logs", a + "/build/logs/clone", 200, "Cloning into", ""},
		{"a log without pods/log", "t-runs", a + "/build/logs/step-0", 403, "you may not get pods/log in namespace team-a", "<script>"},
		{"a log of another namespace", "t-admin", b + "/secret/logs/step-0", 403, "namespace team-b", "secret"},
		{"a log the run does not have", "t-logs", a + "/build/logs/step-9", 404, "no log step-9", ""},
		{"a log of a missing run", "t-logs", a + "/nope/logs/step-0", 404, "no such run", ""},
		{"a namespace that cannot exist", "t-admin", "/v1/namespaces/Team_A/runs", 400, "not a valid namespace name", ""},
		{"a name that cannot exist", "t-admin", a + "/Build", 400, "not a valid name", ""},
		{"a name too long", "t-admin", a + "/" + strings.Repeat("b", 254), 400, "not a valid name", ""},
		{"a stream that cannot exist", "t-admin", a + "/build/logs/Step_0", 400, "not a valid stream name", ""},
		{"a bad UID", "t-admin", a + "/build?uid=U-BUILD", 400, "not a run's UID", ""},
		{"a limit too large", "t-admin", a + "?limit=501", 400, "from 1 to 500", ""},
		{"a misspelt filter", "t-admin", a + "?brnach=main", 400, `unknown parameter \"brnach\"`, ""},
		{"a bad time", "t-admin", a + "?since=yesterday", 400, "RFC 3339", ""},
		{"an unknown path", "t-admin", "/v1/namespaces/team-a/pods", 404, "no such path", ""},
		{"a cursor of another order", "t-admin", a + "?after=" + cursor("o.1.u-r-1"), 400, "after", ""},
		{"a cursor of no list", "t-admin", a + "?after=" + cursor("n.x.u-r-1"), 400, "after", ""},
		{"a cursor that is not base64", "t-admin", a + "?after=a", 400, "after", ""},
		{"a running run by UID", "t-get", a + "/anything?uid=u-running", 200, `"name":"step-0-abcde"`, "step-1-zzzzz"},
		{"a running run by UID has no record", "t-get", a + "/anything?uid=u-running", 200, `"name":"anything"`, `"record"`},
		{"a running run in the other namespace", "t-admin-b", b + "/x?uid=u-running", 200, "step-1-zzzzz", "step-0-abcde"},
		{"a UID the archive holds nothing of", "t-admin", a + "/x?uid=u-nothing", 404, "no such run", ""},
		{"a running run's log", "t-logs", a + "/x/logs/step-0-abcde?uid=u-running", 200, "line 1\nline 2\n", ""},
		{"a running run's log from an offset", "t-logs", a + "/x/logs/step-0-abcde?uid=u-running&offset=7", 200, "line 2\n", "line 1"},
		{"a running run's log kept elsewhere", "t-logs", a + "/x/logs/step-1-zzzzz?uid=u-running", 404, "no log", "team-b"},
		{"an offset past the end", "t-logs", a + "/x/logs/step-0-abcde?uid=u-running&offset=15", 416, "past the end of log step-0-abcde (14 bytes)", ""},
		{"an offset not a number", "t-logs", a + "/build/logs/clone?offset=-1", 400, "offset", ""},
		{"an offset with a sign", "t-logs", a + "/build/logs/clone?offset=%2B1", 400, "offset", ""},
		{"a parameter a log does not take", "t-logs", a + "/build/logs/clone?limit=1", 400, "unknown parameter", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, h, body := call(t, f, http.MethodGet, tc.path, tc.token)
			if status != tc.status || !strings.Contains(body, tc.has) || tc.lacks != "" && strings.Contains(body, tc.lacks) {
				t.Fatalf("GET %s: %d, want %d with %q and without %q\n%s", tc.path, status, tc.status, tc.has, tc.lacks, body)
			}
			if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Cache-Control") != "no-store" {
				t.Errorf("GET %s: headers %v", tc.path, h)
			}
			if status == 200 {
				return
			}
			var e api.ErrorBody
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" || h.Get("Content-Type") != "application/json" {
				t.Errorf("GET %s: the error is not JSON {\"error\": ...}: %q (%v)", tc.path, body, err)
			}
			if status == 401 && h.Get("WWW-Authenticate") == "" {
				t.Errorf("GET %s: 401 without WWW-Authenticate", tc.path)
			}
		})
	}
}

// cursor encodes raw as a list's next is encoded.
func cursor(raw string) string { return base64.RawURLEncoding.EncodeToString([]byte(raw)) }

// TestLogOffset: a log read from an offset is the stored log's bytes from there, with
// the whole log's length in X-Flowci-Log-Bytes; at the end it is empty.
func TestLogOffset(t *testing.T) {
	f := newFixture(t)
	want := f.logs["step-0"]
	for _, offset := range []int64{0, 1, 300, 64 << 10, int64(len(want)) - 1, int64(len(want))} {
		var got bytes.Buffer
		info, err := client.New(f.srv.URL, "t-logs", nil).LogFrom(context.Background(), "team-a", "build", "", "step-0", offset, &got)
		if err != nil || info.Bytes != int64(len(want)) || !bytes.Equal(got.Bytes(), want[offset:]) {
			t.Errorf("from %d: %d bytes (%+v), %v; want the %d from there", offset, got.Len(), info, err, len(want)-int(offset))
		}
	}
	status, h, body := call(t, f, http.MethodHead, "/v1/namespaces/team-a/runs/build/logs/step-0?offset=256", "t-logs")
	if status != 200 || body != "" || h.Get("Content-Length") != strconv.Itoa(len(want)-256) || h.Get(api.HeaderLogBytes) != strconv.Itoa(len(want)) {
		t.Errorf("HEAD from 256: %d %v", status, h)
	}
}

// TestForbiddenSaysNothingOfExistence: another namespace's run that exists and one
// that does not get the same answer.
func TestForbiddenSaysNothingOfExistence(t *testing.T) {
	f := newFixture(t)
	for _, pair := range [][2]string{
		{"/v1/namespaces/team-b/runs/secret", "/v1/namespaces/team-b/runs/nope"},
		{"/v1/namespaces/team-b/runs/secret/logs/step-0", "/v1/namespaces/team-b/runs/nope/logs/step-0"},
		{"/v1/namespaces/team-b/runs/secret?uid=u-secret", "/v1/namespaces/team-b/runs/secret?uid=u-nope"},
	} {
		s1, _, b1 := call(t, f, http.MethodGet, pair[0], "t-admin")
		s2, _, b2 := call(t, f, http.MethodGet, pair[1], "t-admin")
		if s1 != 403 || s1 != s2 || b1 != b2 {
			t.Errorf("%s: %d %q; %s: %d %q", pair[0], s1, b1, pair[1], s2, b2)
		}
	}
}

// TestReadOnly: the API answers GET (and HEAD) only.
func TestReadOnly(t *testing.T) {
	f := newFixture(t)
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		status, h, body := call(t, f, m, "/v1/namespaces/team-a/runs/build", "t-admin")
		if status != http.StatusMethodNotAllowed || !strings.Contains(body, "read-only") || h.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %d %v %s", m, status, h, body)
		}
	}
	status, h, body := call(t, f, http.MethodHead, "/v1/namespaces/team-a/runs/build/logs/step-0", "t-admin")
	if status != 200 || body != "" || h.Get(api.HeaderLogBytes) != h.Get("Content-Length") || h.Get("Content-Length") == "" {
		t.Errorf("HEAD of a log: %d %v %q", status, h, body)
	}
}

// TestDecisionsAreCached: a reader's repeated requests cost one TokenReview and one
// SubjectAccessReview per question while the answers are fresh.
func TestDecisionsAreCached(t *testing.T) {
	f := newFixture(t)
	for range 3 {
		if status, _, body := call(t, f, http.MethodGet, "/v1/namespaces/team-a/runs/build", "t-admin"); status != 200 {
			t.Fatalf("%d %s", status, body)
		}
	}
	if authns, authzs := f.access.reviews(); authns != 1 || authzs != 1 {
		t.Errorf("3 reads: %d token reviews and %d access reviews, want 1 and 1", authns, authzs)
	}
}
