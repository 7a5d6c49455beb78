package api

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/flow-ci/flow-ci/internal/archive"
	"github.com/flow-ci/flow-ci/internal/webview"
)

// AgentAudience is the audience of the ServiceAccount tokens the operator projects into
// the pods that upload to the archive. The API server does not accept a token of this
// audience, so a step that leaks its token leaks no API access.
const AgentAudience = "flow-ci-archive"

// Agent is the pod of a run that calls the archive: who it is comes from its bound
// ServiceAccount token (TokenReview) and the pod, job and run it names, never from the
// request.
type Agent struct {
	Namespace string
	Run       string
	RunUID    string
	// Step is the index of the step the pod runs in the run's status.steps.
	Step     int
	StepName string
}

// Agents authenticates the pods of runs: a token of AgentAudience bound to a running
// step pod that its run's step Job controls, or ErrUnauthenticated.
type Agents interface {
	AuthenticateAgent(ctx context.Context, token string) (Agent, error)
}

// Limits bound what the steps of runs keep.
type Limits struct {
	// FileBytes bounds one artifact; RunBytes one run's; NamespaceBytes one namespace's
	// artifacts in all.
	FileBytes, RunBytes, NamespaceBytes int64
	// Uploads bounds the uploads stored at once: each holds a connection and a write
	// to the store.
	Uploads int
}

// DefaultLimits are the archive's flags' defaults.
func DefaultLimits() Limits {
	return Limits{FileBytes: 1 << 30, RunBytes: 5 << 30, NamespaceBytes: 50 << 30, Uploads: 8}
}

// agentPrefix is where the agents' routes are, authenticated by agent tokens only.
const agentPrefix = "/v1/agent/"

// maxUploadWait bounds how long an upload waits for a free slot before it is refused.
const maxUploadWait = 2 * time.Minute

// serveAgent authenticates an agent's request and serves it; a user's token is not an
// agent's, and an agent's token reads nothing.
func (s *server) serveAgent(w http.ResponseWriter, r *http.Request) {
	if s.agents == nil {
		writeError(w, http.StatusNotFound, "this archive takes no uploads")
		return
	}
	h := r.Header.Get("Authorization")
	token := ""
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		token = strings.TrimSpace(h[7:])
	}
	if token == "" || len(token) > maxToken {
		writeError(w, http.StatusUnauthorized, "a step's archive token is required")
		return
	}
	a, err := s.agents.AuthenticateAgent(r.Context(), token)
	switch {
	case errors.Is(err, webview.ErrUnauthenticated):
		writeError(w, http.StatusUnauthorized, "the token is not a running step's archive token")
		return
	case err != nil:
		s.log.Error(err, "checking an agent's token")
		writeError(w, http.StatusBadGateway, "the cluster could not check the token")
		return
	}
	if r.Method == http.MethodPut && r.URL.Path == agentPrefix+"artifacts" {
		s.putArtifacts(w, r, a)
		return
	}
	writeError(w, http.StatusNotFound, "no such path")
}

// maxUploadEntries bounds the entries of one upload, as the uploader's own collection.
const maxUploadEntries = 1000

// putArtifacts answers PUT /v1/agent/artifacts: the body is a tar stream of the files
// the agent's step keeps, named by their paths relative to the repository root. One
// request per step costs one TokenReview. Each regular file is stored unless a limit
// refuses it; the answer lists what was stored (with the sha256 the archive computed)
// and what was refused and why, which the step's log and status show.
func (s *server) putArtifacts(w http.ResponseWriter, r *http.Request, a Agent) {
	if !s.uploadSlot(r.Context()) {
		writeError(w, http.StatusServiceUnavailable, "the archive is busy storing other uploads; try again")
		return
	}
	defer func() { <-s.uploads }()
	var out UploadResult
	tr := tar.NewReader(r.Body)
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil || n >= maxUploadEntries {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("the upload is not a tar stream of at most %d files", maxUploadEntries))
			return
		}
		if err := CheckArtifactPath(h.Name); err != nil || h.Typeflag != tar.TypeReg || h.Size < 0 {
			out.Refused = append(out.Refused, Refusal{Path: headerText(h.Name, 256), Reason: "not a regular file with a clean relative path"})
			continue
		}
		var refused errRefused
		switch err := s.checkArtifactLimits(r.Context(), a, h.Name, h.Size); {
		case errors.As(err, &refused):
			out.Refused = append(out.Refused, Refusal{Path: h.Name, Reason: refused.msg})
			continue
		case err != nil:
			s.storeFailed(w, r, err, "")
			return
		}
		stored, err := s.store.PutArtifact(r.Context(), archive.Artifact{UID: a.RunUID, Namespace: a.Namespace, Run: a.Run,
			Step: a.Step, StepName: a.StepName, Path: h.Name, Size: h.Size}, tr)
		switch {
		case errors.Is(err, archive.ErrWrongSize) || errors.Is(err, io.ErrUnexpectedEOF):
			writeError(w, http.StatusBadRequest, "the upload ended inside "+h.Name)
			return
		case err != nil:
			s.storeFailed(w, r, err, "")
			return
		}
		out.Stored = append(out.Stored, Uploaded{Path: stored.Path, Size: stored.Size, SHA256: stored.SHA256})
	}
	s.writeJSON(w, out)
}

// uploadSlot waits for one of the Uploads slots, at most maxUploadWait.
func (s *server) uploadSlot(ctx context.Context) bool {
	t := time.NewTimer(maxUploadWait)
	defer t.Stop()
	select {
	case s.uploads <- struct{}{}:
		return true
	case <-ctx.Done():
	case <-t.C:
	}
	return false
}
