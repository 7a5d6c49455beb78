package trigger

import (
	"context"
	"errors"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers/metrics"
	"github.com/flow-ci/flow-ci/internal/fairpool"
	"github.com/flow-ci/flow-ci/internal/forge"
	"github.com/flow-ci/flow-ci/internal/gitsource"
	"github.com/flow-ci/flow-ci/internal/triggerstate"
)

// DefaultPollers is --trigger-pollers: ls-remotes of triggers in flight at once.
const DefaultPollers = 4

// pollTimeout bounds one poll, well under the shortest interval's worth of waiting: a
// silent or hostile server costs the trigger its poll, not the operator a worker.
const pollTimeout = 30 * time.Second

// Lister lists a remote's branches and pull request heads with one ref advertisement
// (gitsource.ListRefs), the files a new head
// changes (gitsource.ChangedFiles) for path filters, and the open pull requests as the
// forge's API describes them (forge.Client.ListPulls).
type Lister interface {
	ListRefs(ctx context.Context, repoURL string, auth *gitsource.Auth) (gitsource.Refs, error)
	ChangedFiles(ctx context.Context, repoURL, base, head string, auth *gitsource.Auth) ([]string, bool, error)
	ChangedFilesFromMergeBase(ctx context.Context, repoURL, target, head string, auth *gitsource.Auth) ([]string, bool, error)
	ListPulls(ctx context.Context, report *v1alpha1.CommitStatusReport, repoURL, token string) ([]forge.PullRequest, error)
}

// GitLister is the go-git backed Lister, with the forge client for pull requests.
type GitLister struct {
	Options []gitsource.Option
	Forge   *forge.Client
}

// ListRefs implements Lister.
func (g GitLister) ListRefs(ctx context.Context, repoURL string, auth *gitsource.Auth) (gitsource.Refs, error) {
	start := time.Now()
	refs, err := gitsource.ListRefs(ctx, repoURL, auth, append([]gitsource.Option{gitsource.WithTimeout(pollTimeout)}, g.Options...)...)
	metrics.ObserveGit("poll", start, err)
	return refs, err
}

// ChangedFilesFromMergeBase implements Lister.
func (g GitLister) ChangedFilesFromMergeBase(ctx context.Context, repoURL, target, head string, auth *gitsource.Auth) ([]string, bool, error) {
	start := time.Now()
	files, all, err := gitsource.ChangedFilesFromMergeBase(ctx, repoURL, target, head, auth, append([]gitsource.Option{gitsource.WithTimeout(pollTimeout)}, g.Options...)...)
	metrics.ObserveGit("changes", start, err)
	return files, all, err
}

// ListPulls implements Lister.
func (g GitLister) ListPulls(ctx context.Context, report *v1alpha1.CommitStatusReport, repoURL, token string) ([]forge.PullRequest, error) {
	if g.Forge == nil {
		return nil, errors.New("the operator has no forge client")
	}
	return g.Forge.ListPulls(ctx, forge.Provider(report.Provider), report.URL, repoURL, token)
}

// ChangedFiles implements Lister.
func (g GitLister) ChangedFiles(ctx context.Context, repoURL, base, head string, auth *gitsource.Auth) ([]string, bool, error) {
	start := time.Now()
	files, all, err := gitsource.ChangedFiles(ctx, repoURL, base, head, auth, append([]gitsource.Option{gitsource.WithTimeout(pollTimeout)}, g.Options...)...)
	metrics.ObserveGit("changes", start, err)
	return files, all, err
}

// poll is one ls-remote of a trigger: in flight, or done with what it found or error.
type poll struct {
	started time.Time
	// poke is the requestedAt annotation the poll answers.
	poke string
	done bool
	found
	// generation is the spec the skips were decided with: void under another.
	generation int64
	err        error
}

// found is what a poll found.
type found struct {
	heads map[string]string
	// skips are the new heads a path filter keeps from being built, by skipKey or
	// pullSkipKey, with why.
	skips map[string]string
	// pulls are the open pull requests, with their heads from the ref advertisement;
	// unseen the open ones whose head the advertisement lacks yet; pullsErr says why
	// they could not be listed (the branches may still be).
	pulls    []triggerstate.Pull
	unseen   []int
	pullsErr error
}

// skipKey names a head in poll.skips.
func skipKey(branch, commit string) string { return branch + "\x00" + commit }

// poller runs polls off the reconcile workers on a pool shared fairly between
// namespaces (internal/fairpool): a tenant whose server never answers holds its share
// of the pool, not every slot. It wakes the trigger through a channel source when its
// poll is done, and remembers when each trigger last polled, since a poll that finds
// nothing new writes no status.
type poller struct {
	pool *fairpool.Pool
	wake chan event.TypedGenericEvent[*v1alpha1.PipelineTrigger]

	mu    sync.Mutex
	polls map[types.UID]*poll
	last  map[types.UID]time.Time
}

func newPoller(slots int) *poller {
	return &poller{
		pool:  fairpool.New(slots, fairpool.DefaultPerKey(slots)),
		wake:  make(chan event.TypedGenericEvent[*v1alpha1.PipelineTrigger], 1024),
		polls: map[types.UID]*poll{},
		last:  map[types.UID]time.Time{},
	}
}

// start polls the trigger unless a poll of it is in flight or waiting to be taken.
func (p *poller) start(t *v1alpha1.PipelineTrigger, now time.Time, poke string, list func(context.Context) (found, error)) {
	p.mu.Lock()
	if _, ok := p.polls[t.UID]; ok {
		p.mu.Unlock()
		return
	}
	job := &poll{started: now, poke: poke, generation: t.Generation}
	p.polls[t.UID] = job
	p.mu.Unlock()
	wake := &v1alpha1.PipelineTrigger{}
	wake.Namespace, wake.Name, wake.UID = t.Namespace, t.Name, t.UID
	p.pool.Submit(t.Namespace, func() {
		p.mu.Lock()
		current := p.polls[t.UID] == job
		p.mu.Unlock()
		if !current {
			return // the trigger went away or was suspended while its poll queued
		}
		ctx, cancel := context.WithTimeout(context.Background(), pollTimeout+5*time.Second)
		f, err := list(ctx)
		cancel()
		p.mu.Lock()
		job.done, job.found, job.err = true, f, err
		p.mu.Unlock()
		p.wake <- event.TypedGenericEvent[*v1alpha1.PipelineTrigger]{Object: wake}
	})
}

// take returns the trigger's finished poll and forgets it, or nil while none is done.
// It records the poll's start as the trigger's last poll.
func (p *poller) take(uid types.UID) *poll {
	p.mu.Lock()
	defer p.mu.Unlock()
	job, ok := p.polls[uid]
	if !ok || !job.done {
		return nil
	}
	delete(p.polls, uid)
	p.last[uid] = job.started
	return job
}

// inFlight reports whether a poll of the trigger is running.
func (p *poller) inFlight(uid types.UID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.polls[uid]
	return ok
}

// lastPoll is when the trigger's last taken poll started, if this process polled it.
func (p *poller) lastPoll(uid types.UID) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last[uid]
}

// markPolled records a poll attempt that did not reach the server (its Secret was
// missing), so the next one waits for the interval.
func (p *poller) markPolled(uid types.UID, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last[uid] = at
}

// retryNow makes the trigger's next pass poll again: its last poll's outcome was not
// written.
func (p *poller) retryNow(uid types.UID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.last, uid)
}

// forget drops what the poller knows of a trigger that is gone or suspended.
func (p *poller) forget(uid types.UID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.polls, uid)
	delete(p.last, uid)
}
