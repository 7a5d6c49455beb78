package pipelinerun

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// InFlight tracks the reconciles that run now, so that the manager's /healthz fails,
// and the kubelet restarts the operator, when a worker is stuck past Limit: every call
// a reconcile makes is bounded well below it, so one that runs longer is hung, and the
// worker it holds is lost to every other run.
type InFlight struct {
	Limit time.Duration

	mu      sync.Mutex
	next    uint64
	started map[uint64]call
}

type call struct {
	req reconcile.Request
	at  time.Time
}

// Wrap tracks every reconcile of r.
func (f *InFlight) Wrap(r reconcile.Reconciler) reconcile.Reconciler {
	return reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
		id := f.begin(req)
		defer f.end(id)
		return r.Reconcile(ctx, req)
	})
}

func (f *InFlight) begin(req reconcile.Request) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.started == nil {
		f.started = map[uint64]call{}
	}
	f.next++
	f.started[f.next] = call{req: req, at: time.Now()}
	return f.next
}

func (f *InFlight) end(id uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.started, id)
}

// Check is a healthz.Checker: it fails while a reconcile has run longer than Limit.
func (f *InFlight) Check(_ *http.Request) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.started {
		if d := time.Since(c.at); f.Limit > 0 && d > f.Limit {
			return fmt.Errorf("the reconcile of %s has run for %s, more than %s", c.req, d.Round(time.Second), f.Limit)
		}
	}
	return nil
}
