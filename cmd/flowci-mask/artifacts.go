package main

import (
	"archive/tar"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/flow-ci/flow-ci/internal/mask"
	"github.com/flow-ci/flow-ci/internal/shorten"
	"github.com/flow-ci/flow-ci/internal/wsfiles"
)

// The environment of a step that keeps artifacts (internal/render).
const (
	envArtifacts  = "FLOWCI_ARTIFACTS"   // JSON: {"paths": [...], "when": "on_success"}
	envArchiveURL = "FLOWCI_ARCHIVE_URL" // the archive's base URL
	envArchiveCA  = "FLOWCI_ARCHIVE_CA"  // PEM of the certificate the archive serves
	envRoot       = "FLOWCI_ARTIFACTS_ROOT"
	// reportPrefix is v1alpha1.ArtifactsReportPrefix, repeated so that this small
	// binary does not link the API's packages (a test keeps them equal).
	reportPrefix = "flowci-artifacts: "
	// uploadTimeout bounds one step's upload; the step's own timeout bounds it too.
	uploadTimeout = 15 * time.Minute
	// maxTail is the log tail kept for the termination message, as the kubelet's own
	// fallback keeps about 2 KiB.
	maxTail = 2 << 10
)

// tokenFile is the projected ServiceAccount token of audience flow-ci-archive (a
// variable for tests).
var tokenFile = "/var/run/flowci/archive/token"

// artifactSpec is FLOWCI_ARTIFACTS.
type artifactSpec struct {
	Paths []string `json:"paths"`
	When  string   `json:"when"`
}

// keeps says whether a step that exited with code keeps its artifacts.
func (s artifactSpec) keeps(code int) bool {
	switch s.When {
	case "always":
		return true
	case "on_failure":
		return code != 0
	}
	return code == 0
}

// report is the termination message's last line: what the step kept.
type report struct {
	Count   int      `json:"count"`
	Bytes   int64    `json:"bytes"`
	Refused []string `json:"refused,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// maxRefusedShown bounds the refusals a report carries; the log lists them all.
const maxRefusedShown = 5

// keepArtifacts collects and uploads the step's artifacts when its spec says so, prints
// what it kept to the step's log, and writes the report into the termination message
// after the tail (the kubelet no longer falls back to the log tail once the message is
// not empty, so the tail is written too).
func keepArtifacts(code int, tail *shorten.TailWriter, m masker) {
	raw, ok := os.LookupEnv(envArtifacts)
	if !ok {
		return
	}
	var spec artifactSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil || !spec.keeps(code) {
		return
	}
	w := m.Writer(os.Stderr)
	logOut = w
	rep := upload(spec)
	_ = w.Close()
	b, _ := json.Marshal(rep)
	msg := existingMessage(tail)
	_ = os.WriteFile(terminationLog, m.Bytes([]byte(msg+"\n"+reportPrefix+string(b)+"\n")), 0)
}

// existingMessage is what the termination message would have been: the step's own
// message, else the tail of its masked output.
func existingMessage(tail *shorten.TailWriter) string {
	if b, err := os.ReadFile(terminationLog); err == nil && len(b) > 0 {
		return strings.TrimRight(string(b[:min(len(b), maxTail)]), "\n")
	}
	return strings.TrimRight(tail.String(), "\n")
}

// upload collects the files and sends them to the archive, logging each.
func upload(spec artifactSpec) report {
	root := os.Getenv(envRoot)
	res, err := wsfiles.Collect(root, spec.Paths, wsfiles.DefaultLimits())
	if err != nil {
		return failed("collecting artifacts: %v", err)
	}
	for _, p := range res.Unmatched {
		fmt.Fprintf(logOut, "flow-ci: artifact path %s matched no file\n", p)
	}
	var rep report
	for _, r := range res.Refused {
		rep.refuse(r.Path, r.Reason)
	}
	if len(res.Files) == 0 {
		return rep
	}
	client, err := archiveClient()
	if err != nil {
		return failed("artifacts not kept: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), uploadTimeout)
	defer cancel()
	result, err := sendRetrying(ctx, client, root, res.Files)
	if err != nil {
		return failed("artifacts not kept: %v", err)
	}
	for _, s := range result.Stored {
		rep.Count++
		rep.Bytes += s.Size
		fmt.Fprintf(logOut, "flow-ci: kept artifact %s (%d bytes, sha256 %s)\n", s.Path, s.Size, s.SHA256)
	}
	for _, r := range result.Refused {
		rep.refuse(r.Path, r.Reason)
	}
	return rep
}

func (r *report) refuse(path, reason string) {
	fmt.Fprintf(logOut, "flow-ci: artifact %s not kept: %s\n", path, reason)
	if len(r.Refused) < maxRefusedShown {
		r.Refused = append(r.Refused, cut(path+": "+reason, maxRefusal))
	}
}

// maxRefusal bounds one refusal in the report, so that five and the tail stay within
// the kubelet's 4 KiB termination message and the report's line is never cut off.
const maxRefusal = 256

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func failed(format string, args ...any) report {
	msg := cut(fmt.Sprintf(format, args...), 512)
	fmt.Fprintln(logOut, "flow-ci:", msg)
	return report{Error: msg}
}

// logOut is where the wrapper's own lines go: the step's stderr through its masker
// (keepArtifacts sets it), so that a Secret in a file's name or the archive's answer
// shows as *** too.
var logOut io.Writer = os.Stderr

// uploadResult is the archive's answer (internal/archive/api.UploadResult), repeated
// here so that this small binary does not link the archive's packages.
type uploadResult struct {
	Stored []struct {
		Path   string `json:"path"`
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
	} `json:"stored"`
	Refused []struct {
		Path   string `json:"path"`
		Reason string `json:"reason"`
	} `json:"refused"`
}

type archive struct {
	http  *http.Client
	url   string
	token string
}

// archiveClient trusts only the archive's own certificate and reads the step's token.
func archiveClient() (archive, error) {
	url, ca := os.Getenv(envArchiveURL), os.Getenv(envArchiveCA)
	if url == "" || ca == "" {
		return archive{}, errors.New("this cluster's flow-ci has no archive")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(ca)) {
		return archive{}, errors.New("the archive's certificate is not PEM")
	}
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		return archive{}, fmt.Errorf("reading the archive token: %w", err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, Proxy: nil}
	return archive{http: &http.Client{Transport: tr}, url: strings.TrimRight(url, "/"), token: strings.TrimSpace(string(token))}, nil
}

// errBusy: the archive has no upload slot free for this namespace now.
var errBusy = errors.New("the archive is busy")

// sendRetrying sends the files, and again after a pause while the archive is busy (it
// shares its upload slots between namespaces), up to the upload's deadline.
func sendRetrying(ctx context.Context, a archive, root string, files []wsfiles.File) (uploadResult, error) {
	pause := 2 * time.Second
	for {
		out, err := send(ctx, a, root, files)
		if !errors.Is(err, errBusy) {
			return out, err
		}
		select {
		case <-ctx.Done():
			return out, err
		case <-time.After(pause):
		}
		pause = min(2*pause, 30*time.Second)
	}
}

// send streams the files as one tar to the archive.
func send(ctx context.Context, a archive, root string, files []wsfiles.File) (uploadResult, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTar(pw, root, files)) }()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, a.url+"/v1/agent/artifacts", pr)
	if err != nil {
		return uploadResult{}, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/x-tar")
	resp, err := a.http.Do(req)
	if err != nil {
		return uploadResult{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusServiceUnavailable {
		return uploadResult{}, errBusy
	}
	if resp.StatusCode != http.StatusOK {
		return uploadResult{}, fmt.Errorf("the archive answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var out uploadResult
	if err := json.Unmarshal(body, &out); err != nil {
		return uploadResult{}, fmt.Errorf("the archive's answer: %w", err)
	}
	return out, nil
}

// writeTar writes each file as it is now, through the workspace root (no symlink out).
func writeTar(w io.Writer, root string, files []wsfiles.File) error {
	tw := tar.NewWriter(w)
	for _, f := range files {
		if err := tarFile(tw, root, f.Path); err != nil {
			return err
		}
	}
	return tw.Close()
}

func tarFile(tw *tar.Writer, root, rel string) error {
	f, info, err := wsfiles.Open(root, rel)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := tw.WriteHeader(&tar.Header{Name: rel, Typeflag: tar.TypeReg, Mode: 0o644, Size: info.Size(), ModTime: info.ModTime()}); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, f, info.Size()); err != nil {
		return fmt.Errorf("%s changed while it was read: %w", rel, err)
	}
	return nil
}

// masker is the step's masker (internal/mask), as keepArtifacts uses it.
type masker interface {
	Writer(io.Writer) *mask.Writer
	Bytes([]byte) []byte
}
