package bench

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"k8s.io/client-go/rest"
)

// apiCounts counts the requests the operator's manager sends, by kind of request.
type apiCounts struct {
	writes, uncachedReads, informer, other atomic.Int64
	conflicts                              atomic.Int64 // 409 responses
	statusConflicts                        atomic.Int64 // 409 responses to status writes

	mu         sync.Mutex
	byResource map[string]int64 // "POST jobs", "PATCH pipelineruns/status", ...
}

// countingConfig returns a copy of base whose transport counts into c.
func countingConfig(base *rest.Config, c *apiCounts) *rest.Config {
	out := rest.CopyConfig(base)
	out.WrapTransport = c.wrap
	return out
}

// wrap counts the requests that go through rt, and the conflicts they meet.
func (c *apiCounts) wrap(rt http.RoundTripper) http.RoundTripper {
	c.mu.Lock()
	if c.byResource == nil {
		c.byResource = map[string]int64{}
	}
	c.mu.Unlock()
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		c.count(req)
		resp, err := rt.RoundTrip(req)
		if err == nil && resp.StatusCode == http.StatusConflict {
			// A stale write (PATCH/PUT) or an AlreadyExists (POST): the breakdown tells.
			c.conflicts.Add(1)
			resource, _ := parsePath(req.URL.Path)
			if strings.HasSuffix(resource, "/status") {
				c.statusConflicts.Add(1)
			}
			c.mu.Lock()
			c.byResource["409 "+req.Method+" "+resource]++
			c.mu.Unlock()
		}
		return resp, err
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (c *apiCounts) count(req *http.Request) {
	resource, named := parsePath(req.URL.Path)
	switch req.Method {
	case http.MethodPost:
		if resource == "tokenreviews" || resource == "subjectaccessreviews" {
			// The metrics endpoint asking who scrapes it: a question, not a write.
			c.other.Add(1)
			return
		}
		fallthrough
	case http.MethodPut, http.MethodPatch, http.MethodDelete:
		c.writes.Add(1)
		key := req.Method + " " + resource
		if resource == "events" {
			key += " of " + regardingKind(req)
		}
		c.mu.Lock()
		c.byResource[key]++
		c.mu.Unlock()
	case http.MethodGet:
		switch {
		case resource == "":
			c.other.Add(1) // discovery, /version
		case strings.Contains(req.URL.RawQuery, "controller-uid"):
			// The pods of an ended Job, read once past the cache.
			c.uncachedReads.Add(1)
			c.mu.Lock()
			c.byResource["LIST "+resource+" of an ended Job"]++
			c.mu.Unlock()
		case req.URL.Query().Get("watch") == "true" || !named:
			// controller-runtime's cache is the only lister: informers LIST then WATCH.
			c.informer.Add(1)
		default:
			c.uncachedReads.Add(1)
			c.mu.Lock()
			c.byResource["GET "+resource]++
			c.mu.Unlock()
		}
	default:
		c.other.Add(1)
	}
}

// reset forgets what was counted so far.
func (c *apiCounts) reset() {
	for _, n := range []*atomic.Int64{&c.writes, &c.uncachedReads, &c.informer, &c.other, &c.conflicts, &c.statusConflicts} {
		n.Store(0)
	}
	c.mu.Lock()
	c.byResource = map[string]int64{}
	c.mu.Unlock()
}

func (c *apiCounts) breakdown() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.byResource))
	for k, v := range c.byResource {
		out[k] = v
	}
	return out
}

// parsePath returns the resource (with its subresource) of an API path and whether the
// path names one object: /apis/batch/v1/namespaces/ns/jobs -> "jobs", false;
// /apis/ci.flowci.dev/v1alpha1/namespaces/ns/pipelineruns/x/status -> "pipelineruns/status", true.
func parsePath(p string) (resource string, named bool) {
	seg := strings.Split(strings.Trim(p, "/"), "/")
	switch {
	case len(seg) >= 2 && seg[0] == "api":
		seg = seg[2:]
	case len(seg) >= 3 && seg[0] == "apis":
		seg = seg[3:]
	default:
		return "", false
	}
	if len(seg) >= 3 && seg[0] == "namespaces" {
		seg = seg[2:]
	}
	switch len(seg) {
	case 0:
		return "", false
	case 1:
		return seg[0], false
	case 2:
		return seg[0], true
	default:
		return seg[0] + "/" + seg[2], true
	}
}

// regardingKind is the kind of object an event being written is about, read from the
// request's body (which is put back for the transport). Events go as protobuf, so the
// body is searched for the two kinds the operator writes events about.
func regardingKind(req *http.Request) string {
	if req.GetBody == nil {
		return "?"
	}
	body, err := req.GetBody()
	if err != nil {
		return "?"
	}
	defer body.Close()
	b, _ := io.ReadAll(io.LimitReader(body, 1<<20))
	for _, kind := range []string{"PipelineTrigger", "PipelineRun"} {
		if bytes.Contains(b, []byte(kind)) {
			return kind
		}
	}
	return "?"
}
