package commitstatus

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/fairpool"
	"github.com/flow-ci/flow-ci/internal/forge"
)

// posted is a post of one run: the state it sends, and how the forge answered.
type posted struct {
	uid   types.UID
	state forge.State
	// context is the status's name on the commit, recorded with the state.
	context string
	done    bool
	err     error
}

// poster sends commit statuses off the reconcile workers, on a pool shared fairly
// between namespaces (internal/fairpool): a tenant whose forge is slow or silent holds
// its share of the pool, never every slot. A finished post wakes its run through a
// channel source; the next pass records what it sent.
type poster struct {
	pool *fairpool.Pool
	wake chan event.TypedGenericEvent[*v1alpha1.PipelineRun]

	mu    sync.Mutex
	posts map[types.NamespacedName]*posted
	// interim holds what was posted of a run that has not ended (pending, running):
	// recorded here, not on the run, since posting it again after a restart is
	// harmless, and a write per run is not.
	interim map[types.NamespacedName]interimPost
}

type interimPost struct {
	uid types.UID
	rec Recorded
}

func newPoster(slots int) *poster {
	return &poster{
		pool:    fairpool.New(slots, fairpool.DefaultPerKey(slots)),
		wake:    make(chan event.TypedGenericEvent[*v1alpha1.PipelineRun], 1024),
		posts:   map[types.NamespacedName]*posted{},
		interim: map[types.NamespacedName]interimPost{},
	}
}

// remember records an interim post of the run in memory.
func (p *poster) remember(run *v1alpha1.PipelineRun, rec Recorded) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.interim[types.NamespacedName{Namespace: run.Namespace, Name: run.Name}] = interimPost{uid: run.UID, rec: rec}
}

// remembered is the run's interim post, if this process made one.
func (p *poster) remembered(run *v1alpha1.PipelineRun) (Recorded, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i, ok := p.interim[types.NamespacedName{Namespace: run.Namespace, Name: run.Name}]
	return i.rec, ok && i.uid == run.UID
}

// start queues post for the run, under its namespace, unless one is in flight or
// waits to be taken.
func (p *poster) start(run *v1alpha1.PipelineRun, s forge.Status, post func(context.Context) error) {
	key := types.NamespacedName{Namespace: run.Namespace, Name: run.Name}
	p.mu.Lock()
	if _, ok := p.posts[key]; ok {
		p.mu.Unlock()
		return
	}
	job := &posted{uid: run.UID, state: s.State, context: s.Context}
	p.posts[key] = job
	p.mu.Unlock()
	wake := &v1alpha1.PipelineRun{}
	wake.Namespace, wake.Name, wake.UID = run.Namespace, run.Name, run.UID
	p.pool.Submit(run.Namespace, func() {
		p.mu.Lock()
		current := p.posts[key] == job
		p.mu.Unlock()
		if !current {
			return // the run went away while its post queued
		}
		err := post(context.Background())
		p.mu.Lock()
		job.done, job.err = true, err
		p.mu.Unlock()
		p.wake <- event.TypedGenericEvent[*v1alpha1.PipelineRun]{Object: wake}
	})
}

// take returns the run's finished post and forgets it; busy says a post is in flight.
// A post of an earlier run of the same name is dropped.
func (p *poster) take(run *v1alpha1.PipelineRun) (job *posted, busy bool) {
	key := types.NamespacedName{Namespace: run.Namespace, Name: run.Name}
	p.mu.Lock()
	defer p.mu.Unlock()
	j, ok := p.posts[key]
	switch {
	case !ok:
		return nil, false
	case !j.done:
		return nil, j.uid == run.UID
	}
	delete(p.posts, key)
	if j.uid != run.UID {
		return nil, false
	}
	return j, false
}

// forget drops what the poster knows of a run that is gone, or whose final state is
// recorded on it.
func (p *poster) forget(key types.NamespacedName) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.posts, key)
	delete(p.interim, key)
}
