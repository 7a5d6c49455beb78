package pipelinerun

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// writeTracker remembers, per run, the resourceVersion the run had before this
// controller's last status write. A cached copy still at that version predates the
// write: a pass on it would compute from an old status and lose its patch to a conflict.
// Versions are only compared for equality, never ordered; they are unique across
// objects, so a later run that reuses the name is never mistaken for the old one.
type writeTracker struct {
	mu     sync.Mutex
	before map[types.NamespacedName]string
}

// wrote records a status write that moved the run from resourceVersion from.
func (w *writeTracker) wrote(run types.NamespacedName, from string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.before == nil {
		w.before = map[types.NamespacedName]string{}
	}
	w.before[run] = from
}

// stale reports whether the cached run predates the last write; once the cache has
// caught up the entry is dropped.
func (w *writeTracker) stale(run *v1alpha1.PipelineRun) bool {
	key := types.NamespacedName{Namespace: run.Namespace, Name: run.Name}
	w.mu.Lock()
	defer w.mu.Unlock()
	from, ok := w.before[key]
	if ok && from == run.ResourceVersion {
		return true
	}
	delete(w.before, key)
	return false
}

// forget drops a run that is gone.
func (w *writeTracker) forget(run types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.before, run)
}
