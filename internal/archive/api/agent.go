package api

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
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
	// Component is the part of the run the pod is: ComponentStep or ComponentClone.
	Component string
	// Step is the index of the step the pod runs in the run's status.steps (-1 for the
	// clone).
	Step     int
	StepName string
	// RepoURL and Branch scope the run's caches ("" Branch: a detached revision).
	RepoURL, Branch string
	// SavesCaches: the run may save caches (v1alpha1.SavesCaches) and the pod is the step
	// the operator added to save them.
	SavesCaches bool
}

// The parts of a run an agent can be.
const (
	ComponentStep  = v1alpha1.ComponentStep
	ComponentClone = v1alpha1.ComponentClone
)

// Agents authenticates the pods of runs: a token of AgentAudience bound to a clone or
// step pod, not ended, that its run's Job controls, or ErrUnauthenticated.
type Agents interface {
	AuthenticateAgent(ctx context.Context, token string) (Agent, error)
}

// Limits bound what the steps of runs keep.
type Limits struct {
	// FileBytes bounds one artifact; RunBytes one run's; NamespaceBytes one namespace's
	// artifacts in all.
	FileBytes, RunBytes, NamespaceBytes int64
	// CacheBytes bounds one cache entry, compressed; NamespaceCacheBytes a namespace's
	// committed entries (eviction keeps them under it when a run's entries commit), and
	// twice it everything the namespace holds, pending entries included, when one
	// arrives.
	CacheBytes, NamespaceCacheBytes int64
	// Uploads bounds the uploads stored at once: each holds a connection and a write
	// to the store.
	Uploads int
}

// DefaultLimits are the archive's flags' defaults.
func DefaultLimits() Limits {
	return Limits{FileBytes: 512 << 20, RunBytes: 2 << 30, NamespaceBytes: 4 << 30, CacheBytes: 2 << 30, NamespaceCacheBytes: 4 << 30, Uploads: 8}
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
		writeError(w, http.StatusUnauthorized, "the token is not the archive token of a run's pod that has not ended")
		return
	case err != nil:
		s.log.Error(err, "checking an agent's token")
		writeError(w, http.StatusBadGateway, "the cluster could not check the token")
		return
	}
	if r.Method == http.MethodPut && r.URL.Path == agentPrefix+"artifacts" {
		if a.Component != ComponentStep {
			writeError(w, http.StatusForbidden, "only a run's steps keep artifacts")
			return
		}
		s.putArtifacts(w, r, a)
		return
	}
	s.agentMux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), agentKey{}, a)))
}

type agentKey struct{}

// agentRoute adapts a handler of an agent's request to the agents' mux.
func agentRoute(h func(http.ResponseWriter, *http.Request, Agent)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, _ := r.Context().Value(agentKey{}).(Agent)
		h(w, r, a)
	}
}

// maxUploadEntries bounds the entries of one upload, as the uploader's own collection.
const maxUploadEntries = 1000

// putArtifacts answers PUT /v1/agent/artifacts: the body is a tar stream of the files
// the agent's step keeps, named by their paths relative to the repository root. One
// request per step costs one TokenReview. Each regular file is stored unless a limit
// refuses it; the answer lists what was stored (with the sha256 the archive computed)
// and what was refused and why, which the step's log and status show.
func (s *server) putArtifacts(w http.ResponseWriter, r *http.Request, a Agent) {
	release, ok := s.uploadSlot(r.Context(), a.Namespace)
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "the archive is busy storing other uploads; try again")
		return
	}
	defer release()
	u, err := s.usageOf(r.Context(), a)
	if err != nil {
		s.storeFailed(w, r, err, "")
		return
	}
	var out UploadResult
	tr := tar.NewReader(idleReader(w, r.Body))
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil || n >= maxUploadEntries {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("the upload is not a tar stream of at most %d files", maxUploadEntries))
			return
		}
		if why := entryRefusal(h); why != "" {
			out.Refused = append(out.Refused, Refusal{Path: headerText(h.Name, 256), Reason: why})
			continue
		}
		var refused errRefused
		if err := u.admit(s.limits, a.Namespace, h.Name, h.Size); errors.As(err, &refused) {
			out.Refused = append(out.Refused, Refusal{Path: h.Name, Reason: refused.msg})
			continue
		}
		stored, err := s.store.PutArtifact(r.Context(), archive.Artifact{UID: a.RunUID, Namespace: a.Namespace, Run: a.Run,
			Step: a.Step, StepName: a.StepName, Path: h.Name, Size: h.Size}, tr)
		switch {
		case errors.Is(err, archive.ErrWrongSize) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, os.ErrDeadlineExceeded):
			writeError(w, http.StatusBadRequest, "the upload ended or stalled inside "+h.Name)
			return
		case err != nil:
			s.storeFailed(w, r, err, "")
			return
		}
		out.Stored = append(out.Stored, Uploaded{Path: stored.Path, Size: stored.Size, SHA256: stored.SHA256})
	}
	s.writeJSON(w, out)
}

// entryRefusal says why a tar entry is not kept, "" when it may be: only regular files
// with clean printable paths, and no sparse file, whose few bytes on the wire would
// stand for gigabytes of zeros in the store.
func entryRefusal(h *tar.Header) string {
	if err := CheckArtifactPath(h.Name); err != nil {
		return err.Error()
	}
	if h.Typeflag != tar.TypeReg || h.Size < 0 {
		return "not a regular file"
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse") {
			return "a sparse file"
		}
	}
	return ""
}

// uploadIdle is how long an upload may send nothing before it is cut: a step that holds
// a slot open without sending holds it for this long only.
const uploadIdle = 30 * time.Second

// idleReader cuts the request when no byte arrives for uploadIdle: each read that makes
// progress pushes the connection's read deadline on.
func idleReader(w http.ResponseWriter, body io.Reader) io.Reader {
	rc := http.NewResponseController(w)
	return readerFunc(func(p []byte) (int, error) {
		_ = rc.SetReadDeadline(time.Now().Add(uploadIdle)) // unsupported writers (tests) keep no deadline
		return body.Read(p)
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// uploadSlot waits for one of the Uploads slots, at most maxUploadWait, and for one of
// the namespace's: a namespace holds at most a quarter of the slots (at least one), so
// one tenant's slow uploads cannot keep the others' waiting.
func (s *server) uploadSlot(ctx context.Context, ns string) (release func(), ok bool) {
	s.slotsMu.Lock()
	if s.perNamespace[ns] >= max(s.limits.Uploads/4, 1) {
		s.slotsMu.Unlock()
		return nil, false
	}
	s.perNamespace[ns]++
	s.slotsMu.Unlock()
	done := func() {
		s.slotsMu.Lock()
		if s.perNamespace[ns]--; s.perNamespace[ns] <= 0 {
			delete(s.perNamespace, ns)
		}
		s.slotsMu.Unlock()
	}
	t := time.NewTimer(maxUploadWait)
	defer t.Stop()
	select {
	case s.uploads <- struct{}{}:
		return func() { <-s.uploads; done() }, true
	case <-ctx.Done():
	case <-t.C:
	}
	done()
	return nil, false
}
