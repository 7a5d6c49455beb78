// Package leasefence keeps a leader from writing once another replica may have taken its
// lease. Leader election alone does not: a leader that stops for a while (a paused
// process, a long GC, a partition) resumes with every goroutine at once, and a reconciler
// that was about to write writes before the elector notices the lease is gone. The fence
// counts from the start of the last renewal that succeeded: writes may start only within
// the renew deadline after it, which is shorter than the lease a standby must see expire
// before it takes over, so the old leader's last write starts before the new one's first.
package leasefence

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// ErrFenced refuses a write: the lease may be someone else's by now.
var ErrFenced = errors.New("not writing: this replica's lease was not renewed within the renew deadline, so another replica may lead")

// Fence is safe for concurrent use. The zero value is not usable: use New.
type Fence struct {
	mu      sync.Mutex
	valid   time.Duration
	renewed time.Time
	held    bool
	now     func() time.Time
}

// New makes a fence that lets writes start up to valid after each renewal. valid must be
// below the lease duration by more than the clocks' drift over one lease.
func New(valid time.Duration) *Fence {
	return &Fence{valid: valid, now: time.Now}
}

// Renewed records a renewal (or the first acquisition) of the lease whose request started
// at started: the lease runs from no earlier than that, on any replica's clock.
func (f *Fence) Renewed(started time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if started.After(f.renewed) {
		f.renewed = started
	}
	f.held = true
}

// Released records that this replica gave the lease up: no write starts after it.
func (f *Fence) Released() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held = false
}

// Deadline is when writes must have started by, and an error when that is already past
// (or the lease was never held, or was released).
func (f *Fence) Deadline() (time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.held {
		return time.Time{}, ErrFenced
	}
	end := f.renewed.Add(f.valid)
	if now := f.now(); !now.Before(end) {
		return end, fmt.Errorf("%w (last renewed %s ago)", ErrFenced, now.Sub(f.renewed).Round(time.Millisecond))
	}
	return end, nil
}

// Context is parent with the fence's deadline, for a write to start in, or the fence's
// refusal.
func (f *Fence) Context(parent context.Context) (context.Context, context.CancelFunc, error) {
	end, err := f.Deadline()
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithDeadline(parent, end)
	return ctx, cancel, nil
}

// Wrap fences an HTTP transport to the API server: a request that writes starts only
// while the fence allows it, with the fence's deadline as its context's. Reads pass, and
// so do token and access reviews, which every replica makes to authenticate its metrics
// readers and which change nothing. Everything built on the wrapped config is fenced:
// clients, clientsets and the event recorder, so a leader that lost its lease writes
// nothing, not even an event.
func Wrap(rt http.RoundTripper, f *Fence) http.RoundTripper {
	return &transport{next: rt, fence: f}
}

type transport struct {
	next  http.RoundTripper
	fence *Fence
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !Writes(req.Method, req.URL.Path) {
		return t.next.RoundTrip(req)
	}
	ctx, cancel, err := t.fence.Context(req.Context())
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// Writes tells whether a request to the API server changes anything it stores.
func Writes(method, path string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	// Contains, not a prefix: the API server may be reached below a path (a proxy's).
	for _, review := range []string{"/apis/authentication.k8s.io/", "/apis/authorization.k8s.io/"} {
		if strings.Contains(path, review) {
			return false
		}
	}
	return true
}

// cancelOnClose releases the request's deadline once its response is read.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
