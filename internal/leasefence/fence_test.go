package leasefence

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestDeadline(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		renewed []time.Duration // offsets from t0 of renewals' starts, in the order recorded
		release bool
		now     time.Duration
		end     time.Duration
		fenced  bool
	}{
		{name: "never held", now: 0, fenced: true},
		{name: "within the deadline", renewed: []time.Duration{0}, now: 9 * time.Second, end: 10 * time.Second},
		{name: "at the deadline", renewed: []time.Duration{0}, now: 10 * time.Second, end: 10 * time.Second, fenced: true},
		{name: "paused past it", renewed: []time.Duration{0}, now: 40 * time.Second, end: 10 * time.Second, fenced: true},
		{name: "renewed again", renewed: []time.Duration{0, 8 * time.Second}, now: 12 * time.Second, end: 18 * time.Second},
		{name: "an older renewal recorded late does not move it back", renewed: []time.Duration{8 * time.Second, 2 * time.Second}, now: 12 * time.Second, end: 18 * time.Second},
		{name: "released", renewed: []time.Duration{0}, release: true, now: time.Second, fenced: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := New(10 * time.Second)
			f.now = func() time.Time { return t0.Add(tt.now) }
			for _, r := range tt.renewed {
				f.Renewed(t0.Add(r))
			}
			if tt.release {
				f.Released()
			}
			end, err := f.Deadline()
			if got := errors.Is(err, ErrFenced); got != tt.fenced {
				t.Fatalf("fenced = %v (%v), want %v", got, err, tt.fenced)
			}
			if !tt.release && len(tt.renewed) > 0 && !end.Equal(t0.Add(tt.end)) {
				t.Errorf("deadline %s, want %s", end.Sub(t0), tt.end)
			}
		})
	}
}

func TestWrites(t *testing.T) {
	for _, c := range []struct {
		method, path string
		want         bool
	}{
		{http.MethodGet, "/api/v1/namespaces/a/pods", false},
		{http.MethodHead, "/api/v1/pods", false},
		{http.MethodPost, "/apis/batch/v1/namespaces/a/jobs", true},
		{http.MethodPatch, "/apis/ci.flowci.dev/v1alpha1/namespaces/a/pipelineruns/r/status", true},
		{http.MethodPut, "/apis/coordination.k8s.io/v1/namespaces/a/leases/l", true},
		{http.MethodDelete, "/api/v1/namespaces/a/persistentvolumeclaims/w", true},
		{http.MethodPost, "/apis/events.k8s.io/v1/namespaces/a/events", true},
		{http.MethodPost, "/apis/authentication.k8s.io/v1/tokenreviews", false},
		{http.MethodPost, "/apis/authorization.k8s.io/v1/subjectaccessreviews", false},
		{http.MethodPost, "/k8s/clusters/c-1/apis/authentication.k8s.io/v1/tokenreviews", false},
	} {
		if got := Writes(c.method, c.path); got != c.want {
			t.Errorf("Writes(%s %s) = %v, want %v", c.method, c.path, got, c.want)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// The wrapped transport sends a write only while the fence allows it, with the fence's
// deadline on its context; a refused write never reaches the next transport.
func TestWrap(t *testing.T) {
	f := New(time.Minute)
	var sent []string
	var deadline time.Time
	rt := Wrap(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent = append(sent, r.Method)
		deadline, _ = r.Context().Deadline()
		return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader(""))}, nil
	}), f)
	do := func(method string) error {
		req, _ := http.NewRequest(method, "https://api/apis/batch/v1/namespaces/a/jobs", nil)
		resp, err := rt.RoundTrip(req)
		if err == nil {
			_ = resp.Body.Close()
		}
		return err
	}
	if err := do(http.MethodPost); !errors.Is(err, ErrFenced) {
		t.Fatalf("a write before the lease was held: %v", err)
	}
	if err := do(http.MethodGet); err != nil {
		t.Fatalf("a read was fenced: %v", err)
	}
	renewed := time.Now()
	f.Renewed(renewed)
	if err := do(http.MethodPost); err != nil {
		t.Fatalf("a write while held: %v", err)
	}
	if want := renewed.Add(time.Minute); !deadline.Equal(want) {
		t.Errorf("the write's deadline is %v, want the fence's %v", deadline, want)
	}
	if want := []string{http.MethodGet, http.MethodPost}; strings.Join(sent, ",") != strings.Join(want, ",") {
		t.Errorf("sent %v, want %v", sent, want)
	}
}
