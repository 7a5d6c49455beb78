package pipelinerun

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// writeTracker remembers, per run, this controller's last status write: the
// resourceVersion the run had before it and the one it got. A cached copy still at the
// old version predates the write, and a pass on it would compute from an old status and
// lose its patch to a conflict; such a pass is deferred until the write's own watch
// event, which otherwise reconciles nothing (it is ours). Versions are only compared
// for equality, never ordered; they are unique across objects, so a later run that
// reuses the name is never mistaken for the old one.
type writeTracker struct {
	mu   sync.Mutex
	runs map[types.NamespacedName]*written
}

type written struct {
	from, to string // resourceVersions before and after the write
	seen     bool   // the write's watch event arrived
	deferred bool   // a pass waits for the write's event
}

// wrote records a status write that moved the run from resourceVersion from to to.
func (w *writeTracker) wrote(run types.NamespacedName, from, to string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.runs == nil {
		w.runs = map[types.NamespacedName]*written{}
	}
	w.runs[run] = &written{from: from, to: to}
}

// stale reports whether the cached run predates the last write. If the write's event
// has arrived meanwhile (the cache is fresh now), reread says to read the run again;
// otherwise the pass is deferred to that event.
func (w *writeTracker) stale(run *v1alpha1.PipelineRun) (stale, reread bool) {
	key := types.NamespacedName{Namespace: run.Namespace, Name: run.Name}
	w.mu.Lock()
	defer w.mu.Unlock()
	e, ok := w.runs[key]
	if !ok || e.from != run.ResourceVersion {
		return false, false
	}
	if e.seen {
		return true, true
	}
	e.deferred = true
	return true, false
}

// event notes a run's update event at resourceVersion rv. It reports whether the event
// is our own write's (ours) and whether a deferred pass waits for it (wake).
func (w *writeTracker) event(run types.NamespacedName, rv string) (ours, wake bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e, ok := w.runs[run]
	if !ok || e.to != rv {
		return false, false
	}
	e.seen = true
	wake, e.deferred = e.deferred, false
	return true, wake
}

// forget drops a run that is gone.
func (w *writeTracker) forget(run types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.runs, run)
}
