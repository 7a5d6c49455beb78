package api_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/flow-ci/flow-ci/internal/archive"
	"github.com/flow-ci/flow-ci/internal/archive/api"
	"github.com/flow-ci/flow-ci/internal/archive/sqlstore"
	"github.com/flow-ci/flow-ci/internal/webview"
)

// fakeAccess is the cluster's authentication and RBAC as a table: tokens name users,
// and each grant allows one user one verb on one group/resource/subresource in one
// namespace. It counts the reviews it answers.
type fakeAccess struct {
	users  map[string]string // token → user name
	grants map[string]bool   // grantKey → allowed

	mu             sync.Mutex
	authns, authzs int
}

// downToken is a token the fake cannot review, as when the API server is unreachable.
const downToken = "t-down"

func grantKey(user, ns, verb, group, resource, sub string) string {
	return fmt.Sprintf("%s|%s|%s|%s|%s|%s", user, ns, verb, group, resource, sub)
}

func (f *fakeAccess) Authenticate(_ context.Context, token string) (webview.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.authns++
	if token == downToken {
		return webview.User{}, errors.New("dial tcp 10.0.0.1:443: connection refused")
	}
	name, ok := f.users[token]
	if !ok {
		return webview.User{}, webview.ErrUnauthenticated
	}
	return webview.User{Name: name, UID: "uid-of-" + name}, nil
}

func (f *fakeAccess) Authorize(_ context.Context, u webview.User, a webview.Attributes) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.authzs++
	return f.grants[grantKey(u.Name, a.Namespace, a.Verb, a.Group, a.Resource, a.Subresource)], nil
}

func (f *fakeAccess) reviews() (authns, authzs int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.authns, f.authzs
}

// The readers of the fixture, by token. Only admin-b may read team-b.
var (
	listRuns = []string{"list", "ci.flowci.dev", "pipelineruns", ""}
	getRuns  = []string{"get", "ci.flowci.dev", "pipelineruns", ""}
	getLogs  = []string{"get", "", "pods", "log"}
	readers  = map[string]struct {
		user, ns string
		rules    [][]string
	}{
		"t-admin":   {"admin", "team-a", [][]string{listRuns, getRuns, getLogs}},
		"t-runs":    {"runs", "team-a", [][]string{listRuns, getRuns}},
		"t-get":     {"getter", "team-a", [][]string{getRuns}},
		"t-list":    {"lister", "team-a", [][]string{listRuns}},
		"t-logs":    {"logs", "team-a", [][]string{getLogs}},
		"t-admin-b": {"admin-b", "team-b", [][]string{listRuns, getRuns, getLogs}},
	}
)

func newFakeAccess() *fakeAccess {
	f := &fakeAccess{users: map[string]string{}, grants: map[string]bool{}}
	for token, r := range readers {
		f.users[token] = r.user
		for _, rule := range r.rules {
			f.grants[grantKey(r.user, r.ns, rule[0], rule[1], rule[2], rule[3])] = true
		}
	}
	return f
}

// base is the creation time of the fixture's oldest run.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture is a real store with two namespaces' runs, served by the API.
type fixture struct {
	store  archive.Store
	access *fakeAccess
	srv    *httptest.Server
	// logs are the stored logs of team-a/build (the newest), by stream.
	logs map[string][]byte
}

// newFixture stores, in team-a: two runs named build (u-build-old, then u-build-new
// with a binary step log and a clone log the archive gave up on) and six more, r-0 to
// r-5 (the even ones on branch feature/x); in team-b: run secret with a log. Run
// u-running has no record, a log in team-a and another in team-b.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.OpenEmbedded(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	f := &fixture{store: st, access: newFakeAccess(), logs: map[string][]byte{
		"step-0": binaryLog(),
		"clone":  []byte("Cloning into '/workspace'...\n"),
	}}
	put := func(r archive.Record) {
		if err := st.PutRecord(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	put(archive.Record{UID: "u-build-old", Namespace: "team-a", Name: "build", RepoURL: "https://git.example/app.git",
		Branch: "main", Commit: "aaaa111122223333444455556666777788889999", Phase: "Failed", Created: base,
		Finished: base.Add(time.Minute), Doc: []byte(`{"old":true}`)})
	put(archive.Record{UID: "u-build-new", Namespace: "team-a", Name: "build", RepoURL: "https://git.example/app.git",
		Branch: "main", Commit: "bbbb111122223333444455556666777788889999", Phase: "Succeeded", Created: base.Add(time.Hour),
		Finished: base.Add(time.Hour + time.Minute), Doc: []byte(`{"status":{"phase":"Succeeded","steps":[{"name":"test","message":"<b>&</b>"}]}}`)})
	for i := range 6 {
		branch, phase := "main", "Succeeded"
		if i%2 == 0 {
			branch, phase = "feature/x", "Failed"
		}
		put(archive.Record{UID: fmt.Sprintf("u-r-%d", i), Namespace: "team-a", Name: fmt.Sprintf("r-%d", i),
			RepoURL: "https://git.example/app.git", Branch: branch, Commit: fmt.Sprintf("c%039d", i), Phase: phase,
			Created: base.Add(2*time.Hour + time.Duration(i)*time.Minute)})
	}
	put(archive.Record{UID: "u-secret", Namespace: "team-b", Name: "secret", RepoURL: "https://git.example/b.git",
		Phase: "Succeeded", Created: base, Doc: []byte(`{"secret":"of team-b"}`)})
	f.appendLog(t, "team-a", "u-build-new", "step-0", f.logs["step-0"], archive.LogState{Done: true})
	f.appendLog(t, "team-a", "u-build-new", "clone", f.logs["clone"],
		archive.LogState{Done: true, Missing: "lines after 10:02\r\nX-Injected: yes\x1b[31m — the pod was gone"})
	f.appendLog(t, "team-a", "u-build-old", "step-0", []byte("the old run's log\n"), archive.LogState{Done: true})
	f.appendLog(t, "team-b", "u-secret", "step-0", []byte("team-b's secret\n"), archive.LogState{Done: true})
	// u-running has no record yet; one of its logs is (by a fault) kept in team-b.
	f.appendLog(t, "team-a", "u-running", "step-0-abcde", []byte("line 1\nline 2\n"),
		archive.LogState{LastTime: base.Add(3 * time.Hour), AtLastTime: 1})
	f.appendLog(t, "team-b", "u-running", "step-1-zzzzz", []byte("kept in team-b\n"), archive.LogState{})
	f.srv = httptest.NewServer(api.New(api.Options{Store: st, Access: f.access}))
	t.Cleanup(f.srv.Close)
	return f
}

// appendLog stores log in chunks of 64 KiB, with last as the final state.
func (f *fixture) appendLog(t *testing.T, ns, uid, stream string, log []byte, last archive.LogState) {
	t.Helper()
	key := archive.StreamKey{UID: uid, Namespace: ns, Stream: stream}
	for rest := log; len(rest) > 0; {
		chunk := rest[:min(len(rest), 64<<10)]
		rest = rest[len(chunk):]
		next := archive.LogState{}
		if len(rest) == 0 {
			next = last
		}
		if _, err := f.store.Append(context.Background(), key, chunk, next); err != nil {
			t.Fatal(err)
		}
	}
}

// binaryLog is a log no text handling leaves alone: every byte value, invalid UTF-8,
// NULs, CRLFs, no final newline, and 1 MiB of noise that compresses badly.
func binaryLog() []byte {
	var b bytes.Buffer
	for i := range 256 {
		b.WriteByte(byte(i))
	}
	b.WriteString("\xff\xfe invalid UTF-8 \xc3\x28\r\n\x00\x00<script>alert(1)</script>\r\n")
	x := uint32(2463534242)
	for range 1 << 20 {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b.WriteByte(byte(x))
	}
	b.WriteString("no final newline")
	return b.Bytes()
}
