package main

import (
	"archive/tar"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/mask"
	"github.com/flow-ci/flow-ci/internal/shorten"
)

func TestReportPrefixIsTheAPIs(t *testing.T) {
	if reportPrefix != v1alpha1.ArtifactsReportPrefix {
		t.Fatalf("%q != %q", reportPrefix, v1alpha1.ArtifactsReportPrefix)
	}
}

// keepArtifacts sends the matched files as one tar with the step's token, trusting only
// the archive's certificate, and writes the tail and the report to the termination log.
func TestKeepArtifacts(t *testing.T) {
	got := map[string]string{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut || r.URL.Path != "/v1/agent/artifacts" || r.Header.Get("Authorization") != "Bearer step-token" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		tr := tar.NewReader(r.Body)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			b, _ := io.ReadAll(tr)
			got[h.Name] = string(b)
		}
		_, _ = w.Write([]byte(`{"stored":[{"path":"bin/app","size":5,"sha256":"abc"}],"refused":[{"path":"big","reason":"over the limit"}]}`))
	}))
	defer srv.Close()
	dir := t.TempDir()
	root := filepath.Join(dir, "src")
	writeFile(t, filepath.Join(root, "bin", "app"), "hello")
	writeFile(t, filepath.Join(root, "other.txt"), "not kept")
	if err := os.Symlink("/etc/passwd", filepath.Join(root, "leak")); err != nil {
		t.Fatal(err)
	}
	tokenFile, terminationLog = filepath.Join(dir, "token"), filepath.Join(dir, "termination-log")
	writeFile(t, tokenFile, "step-token\n")
	writeFile(t, terminationLog, "")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	t.Setenv(envArtifacts, `{"paths":["bin","leak"],"when":"on_failure"}`)
	t.Setenv(envRoot, root)
	t.Setenv(envArchiveURL, srv.URL)
	t.Setenv(envArchiveCA, string(ca))

	m, _ := mask.New([]string{"step-token"})
	tail := &shorten.TailWriter{Max: maxTail}
	_, _ = tail.Write([]byte(strings.Repeat("x", 5000) + "\nFAIL: the last line\n"))
	keepArtifacts(0, tail, m) // succeeded: on_failure keeps nothing
	if len(got) != 0 {
		t.Fatalf("a step that succeeded kept %v under on_failure", got)
	}
	keepArtifacts(2, tail, m)
	if len(got) != 1 || got["bin/app"] != "hello" {
		t.Errorf("uploaded %v, want bin/app only (the symlink out is refused before the upload)", got)
	}
	msg, _ := os.ReadFile(terminationLog)
	lines := strings.Split(strings.TrimRight(string(msg), "\n"), "\n")
	last := lines[len(lines)-1]
	var rep report
	if err := json.Unmarshal([]byte(strings.TrimPrefix(last, reportPrefix)), &rep); err != nil || !strings.HasPrefix(last, reportPrefix) {
		t.Fatalf("last line %q: %v", last, err)
	}
	if rep.Count != 1 || rep.Bytes != 5 || len(rep.Refused) != 2 {
		t.Errorf("report %+v, want 1 file of 5 bytes and two refusals (leak, big)", rep)
	}
	if !strings.Contains(string(msg), "FAIL: the last line") || len(msg) > 4096 {
		t.Errorf("the termination message keeps the log tail within the kubelet's 4 KiB: %d bytes", len(msg))
	}
}
