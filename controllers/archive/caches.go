package archive

import (
	"context"
	"fmt"
	"time"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// pendingCacheAge is how long an entry a run saved waits for the run's record before
// retention drops it: the run's record commits or drops it, and a run is archived within
// its hold; an entry older than this belongs to a run the archive never recorded.
const pendingCacheAge = 24 * time.Hour

// finishCaches makes what the run saved findable when the run succeeded, or drops it,
// then evicts the namespace's least recently used entries past --max-namespace-cache-bytes.
// It runs before the record is stored, so an error is retried with it.
func (r *Reconciler) finishCaches(ctx context.Context, run *v1alpha1.PipelineRun) error {
	n, err := r.Store.FinishCaches(ctx, string(run.UID), run.Status.Phase == v1alpha1.PhaseSucceeded)
	if err != nil {
		r.Metrics.error("caches")
		return fmt.Errorf("finishing the caches of %s: %w", run.Name, err)
	}
	if n == 0 || r.CacheBytes <= 0 {
		return nil
	}
	evicted, freed, err := r.Store.EvictCaches(ctx, run.Namespace, r.CacheBytes)
	if err != nil {
		r.Metrics.error("caches")
		return fmt.Errorf("evicting the caches of namespace %s: %w", run.Namespace, err)
	}
	if evicted > 0 {
		r.Metrics.cacheEvicted.Add(float64(evicted))
		r.Log.V(1).Info("evicted caches", "namespace", run.Namespace, "entries", evicted, "bytes", freed)
	}
	return nil
}
