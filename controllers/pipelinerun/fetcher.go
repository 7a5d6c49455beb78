package pipelinerun

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/fairpool"
	"github.com/flow-ci/flow-ci/internal/pipeline"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

// DefaultFetchers is --definition-fetchers: git reads of new runs in parallel, off the
// reconcile workers, so a burst of new runs never holds up the handoffs of running ones;
// one namespace may hold half of them (fairpool.DefaultPerKey).
const DefaultFetchers = 4

// maxFileCacheBytes bounds the cache of pipeline files read from git.
const maxFileCacheBytes = 16 << 20

// fetched is what a definition fetch found: the commit and file (and, for a pinned
// revision, whether it is off its branch), or why not.
type fetched struct {
	commit   string
	detached bool
	raw      []byte
	changes  *runstate.Changes // for when.changes; nil when no step has it
	err      error
}

// fetcher runs the git I/O of new runs on a pool shared fairly between namespaces
// (internal/fairpool): namespaces take turns for free slots and none holds more than
// its share, so a tenant's burst, or a server of theirs that never answers, delays no
// other tenant's runs. Concurrent resolves of one repository and branch with the same
// credentials share one ls-remote; files are cached by namespace, Secret (and its
// version), repository, commit and path, so they are never shared across credentials.
// A finished fetch wakes its run through a channel source.
type fetcher struct {
	pool *fairpool.Pool
	wake chan event.TypedGenericEvent[*v1alpha1.PipelineRun]

	resolves singleflight.Group

	mu       sync.Mutex
	inflight map[types.UID]*fetchJob
	// waited is how long each run's fetches waited for a slot behind other work, over
	// every attempt: the pending timeout does not count it.
	waited map[types.UID]time.Duration
	files  fileCache
}

type fetchJob struct {
	admitted time.Time
	done     bool
	result   fetched
}

func newFetcher(slots int) *fetcher {
	return &fetcher{
		pool:     fairpool.New(slots, fairpool.DefaultPerKey(slots)),
		wake:     make(chan event.TypedGenericEvent[*v1alpha1.PipelineRun], 1024),
		inflight: map[types.UID]*fetchJob{},
		waited:   map[types.UID]time.Duration{},
	}
}

// state returns the run's fetch: absent (nil), running, or done with its result.
func (f *fetcher) state(uid types.UID) *fetchJob {
	f.mu.Lock()
	defer f.mu.Unlock()
	if j, ok := f.inflight[uid]; ok {
		cp := *j
		return &cp
	}
	return nil
}

// waitedFor is how long the run's fetches have waited for a slot so far.
func (f *fetcher) waitedFor(uid types.UID) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.waited[uid]
}

// start queues fetch for the run on the pool, under its namespace, unless one runs
// already. admitted is when the run was admitted; its timeout counts from then, and
// fetch gets how long the run has waited for slots so far. The goroutine keeps its own
// copy of the run: the reconciler's object is reused by later passes.
func (f *fetcher) start(run *v1alpha1.PipelineRun, admitted time.Time, fetch func(ctx context.Context, waited time.Duration) fetched) {
	uid, wake := run.UID, run.DeepCopy()
	f.mu.Lock()
	if _, ok := f.inflight[uid]; ok {
		f.mu.Unlock()
		return
	}
	f.inflight[uid] = &fetchJob{admitted: admitted}
	f.mu.Unlock()
	// A fetch that waits for a slot, or for a slow server, wakes its run once meanwhile,
	// so that its Pending status gets written (firstWriteDelay).
	timer := time.AfterFunc(firstWriteDelay, func() { f.wake <- event.TypedGenericEvent[*v1alpha1.PipelineRun]{Object: wake} })
	queued := time.Now()
	f.pool.Submit(run.Namespace, func() {
		f.mu.Lock()
		if _, ok := f.inflight[uid]; !ok {
			f.mu.Unlock()
			timer.Stop()
			return // the run went away while it queued: no git call for it
		}
		f.waited[uid] += time.Since(queued)
		waited := f.waited[uid]
		f.mu.Unlock()
		res := fetch(context.Background(), waited)
		timer.Stop()
		f.mu.Lock()
		if j, ok := f.inflight[uid]; ok {
			j.done, j.result = true, res
		}
		f.mu.Unlock()
		f.wake <- event.TypedGenericEvent[*v1alpha1.PipelineRun]{Object: wake}
	})
}

// forget drops the run's fetch, so that a retry starts a new one; what it waited
// for slots is kept for the pending timeout.
func (f *fetcher) forget(uid types.UID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.inflight, uid)
}

// release drops everything of a run whose definition is pinned, or that is gone.
func (f *fetcher) release(uid types.UID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.inflight, uid)
	delete(f.waited, uid)
}

// resolve runs ls-remote once for concurrent callers with the same key.
func (f *fetcher) resolve(key string, do func() (string, error)) (string, error) {
	v, err, _ := f.resolves.Do(key, func() (any, error) { return do() })
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// readFile returns the file from the cache, or reads and caches it.
func (f *fetcher) readFile(key string, do func() ([]byte, error)) ([]byte, error) {
	f.mu.Lock()
	raw, ok := f.files.get(key)
	f.mu.Unlock()
	if ok {
		return raw, nil
	}
	v, err, _ := f.resolves.Do("file\x00"+key, func() (any, error) { return do() })
	if err != nil {
		return nil, err
	}
	raw = v.([]byte)
	f.mu.Lock()
	f.files.put(key, raw)
	f.mu.Unlock()
	return raw, nil
}

// fetchKey joins the parts that decide what a git call may see.
func fetchKey(run *v1alpha1.PipelineRun, secretVersion string, parts ...string) string {
	secret := ""
	if ref := run.Spec.GitSecretRef; ref != nil {
		secret = ref.Name + "@" + secretVersion
	}
	key := fmt.Sprintf("%s\x00%s\x00%s", run.Namespace, secret, run.Spec.RepoURL)
	for _, p := range parts {
		key += "\x00" + p
	}
	return key
}

// fileCache is a byte-bounded LRU of pipeline files; the fetcher's lock guards it.
type fileCache struct {
	size  int
	byKey map[string]*list.Element
	lru   list.List
}

type cachedFile struct {
	key string
	raw []byte
}

func (c *fileCache) get(key string) ([]byte, bool) {
	e, ok := c.byKey[key]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(e)
	return e.Value.(*cachedFile).raw, true
}

func (c *fileCache) put(key string, raw []byte) {
	if len(raw) > pipeline.MaxFileSize {
		return
	}
	if c.byKey == nil {
		c.byKey = map[string]*list.Element{}
	}
	if _, ok := c.byKey[key]; ok {
		return
	}
	c.byKey[key] = c.lru.PushFront(&cachedFile{key: key, raw: raw})
	c.size += len(raw)
	for c.size > maxFileCacheBytes {
		old := c.lru.Back()
		cf := old.Value.(*cachedFile)
		c.lru.Remove(old)
		delete(c.byKey, cf.key)
		c.size -= len(cf.raw)
	}
}
