package api_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flow-ci/flow-ci/internal/archive/api"
	"github.com/flow-ci/flow-ci/internal/webview"
)

// fakeAgents stands for the cluster's answer about a pod-bound token (the pure check
// of pod, Job and run is controllers/archive's agentOf, tested there, and the whole
// chain in the e2e).
type fakeAgents map[string]api.Agent

func (f fakeAgents) AuthenticateAgent(_ context.Context, token string) (api.Agent, error) {
	if a, ok := f[token]; ok {
		return a, nil
	}
	return api.Agent{}, webview.ErrUnauthenticated
}

var stepOfBuild = api.Agent{Namespace: "team-a", Run: "build", RunUID: "u-build-new", Component: api.ComponentStep, Step: 0, StepName: "test"}

// withAgents serves the fixture's store with the agent token a-build and limits.
func withAgents(t *testing.T, f *fixture, l api.Limits) *httptest.Server {
	srv := httptest.NewServer(api.New(api.Options{Store: f.store, Access: f.access, Limits: l,
		Agents: fakeAgents{"a-build": stepOfBuild}}))
	t.Cleanup(srv.Close)
	return srv
}

type entry struct {
	name, body string
	typ        byte
}

func tarOf(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: e.typ}
		if e.typ == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag == tar.TypeSymlink {
			h.Size, h.Linkname = 0, "/etc/passwd"
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			_, _ = tw.Write([]byte(e.body))
		}
	}
	_ = tw.Close()
	return b.Bytes()
}

func upload(t *testing.T, srv *httptest.Server, token string, body []byte) (int, api.UploadResult) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/v1/agent/artifacts", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out api.UploadResult
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func get(t *testing.T, srv *httptest.Server, token, path string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// A step's upload keeps its regular files with clean paths under the limits, refuses
// the rest with reasons, and the files are read back byte for byte by readers of the
// run's logs only.
func TestArtifactsUploadAndRead(t *testing.T) {
	f := newFixture(t)
	srv := withAgents(t, f, api.Limits{FileBytes: 64, RunBytes: 70, NamespaceBytes: 1 << 20})
	code, res := upload(t, srv, "a-build", tarOf(t,
		entry{name: "bin/app", body: "\x7fELF binary"},
		entry{name: "big.bin", body: strings.Repeat("x", 65)},
		entry{name: "../etc/x", body: "escape"},
		entry{name: "leak", typ: tar.TypeSymlink},
		entry{name: ".git/config", body: "[core]\n"},
		entry{name: "esc\x1b[2Jape", body: "x"},
		entry{name: "report.txt", body: "ok\n"},
	))
	if code != http.StatusOK {
		t.Fatalf("upload: %d", code)
	}
	stored := map[string]string{}
	for _, s := range res.Stored {
		stored[s.Path] = s.SHA256
	}
	sum := sha256.Sum256([]byte("\x7fELF binary"))
	if len(stored) != 2 || stored["bin/app"] != hex.EncodeToString(sum[:]) || stored["report.txt"] == "" {
		t.Errorf("stored %v, want bin/app with the archive's own sha256 and report.txt", stored)
	}
	refused := map[string]string{}
	for _, r := range res.Refused {
		refused[r.Path] = r.Reason
	}
	if len(refused) != 5 || !strings.Contains(refused["big.bin"], "--max-artifact-bytes") || refused["leak"] == "" || refused["../etc/x"] == "" ||
		!strings.Contains(refused[".git/config"], ".git") {
		t.Errorf("refused %v", refused)
	}
	code, res = upload(t, srv, "a-build", tarOf(t, entry{name: "more.bin", body: strings.Repeat("y", 60)}))
	if code != http.StatusOK || len(res.Stored) != 0 || len(res.Refused) != 1 || !strings.Contains(res.Refused[0].Reason, "--max-run-artifact-bytes") {
		t.Errorf("an upload past the run's limit: %d %+v", code, res)
	}

	resp, body := get(t, srv, "t-admin", "/v1/namespaces/team-a/runs/build/artifacts/bin/app")
	if resp.StatusCode != http.StatusOK || string(body) != "\x7fELF binary" || resp.Header.Get(api.HeaderSHA256) != hex.EncodeToString(sum[:]) {
		t.Errorf("download: %d %q %q", resp.StatusCode, body, resp.Header.Get(api.HeaderSHA256))
	}
	if d := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(d, "attachment") {
		t.Errorf("Content-Disposition %q: a tenant's file must never render as the archive's page", d)
	}
	resp, body = get(t, srv, "t-admin", "/v1/namespaces/team-a/runs/build/artifacts")
	var list api.ArtifactList
	_ = json.Unmarshal(body, &list)
	if resp.StatusCode != http.StatusOK || len(list.Items) != 2 || list.Items[0].Path != "bin/app" || list.Items[0].StepName != "test" {
		t.Errorf("list: %d %s", resp.StatusCode, body)
	}
	for _, tc := range []struct{ token, path string }{
		{"t-runs", "/v1/namespaces/team-a/runs/build/artifacts"},
		{"t-runs", "/v1/namespaces/team-a/runs/build/artifacts/bin/app"},
		{"t-admin-b", "/v1/namespaces/team-a/runs/build/artifacts/bin/app"},
	} {
		if resp, _ := get(t, srv, tc.token, tc.path); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s %s: %d, want 403: reading artifacts is reading the run's logs", tc.token, tc.path, resp.StatusCode)
		}
	}
	if resp, _ := get(t, srv, "t-admin-b", "/v1/namespaces/team-b/runs/secret/artifacts/bin/app"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("another namespace's run: %d, want 404", resp.StatusCode)
	}
}

// The agents' routes take only agents' tokens, and the readers' only users'.
func TestAgentAndReaderTokensDoNotMix(t *testing.T) {
	f := newFixture(t)
	srv := withAgents(t, f, api.Limits{})
	if code, _ := upload(t, srv, "t-admin", tarOf(t, entry{name: "x", body: "x"})); code != http.StatusUnauthorized {
		t.Errorf("a reader's token uploads: %d", code)
	}
	if resp, _ := get(t, srv, "a-build", "/v1/namespaces/team-a/runs/build/artifacts"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("an agent's token reads: %d", resp.StatusCode)
	}
	if code, _ := upload(t, srv, "a-build", []byte("not a tar stream at all, but long enough to be read as a header block..........................................................................................................................................................................................................................................................................................................................................................................................................................................................................")); code != http.StatusBadRequest {
		t.Errorf("garbage: %d, want 400", code)
	}
}
