package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/flow-ci/flow-ci/controllers/commitstatus"
	"github.com/flow-ci/flow-ci/internal/forge"
	"github.com/flow-ci/flow-ci/internal/leasefence"
)

// leaseTimes are the leader election's durations (docs/operating.md gives the measurements
// behind the defaults).
type leaseTimes struct {
	duration, renewDeadline, retryPeriod time.Duration
}

func leaseFlags(fs *flag.FlagSet, l *leaseTimes) {
	fs.DurationVar(&l.duration, "leader-elect-lease-duration", 15*time.Second,
		"How long a standby waits, after the leader last renewed, before it takes over: the failover time of a leader that died.")
	fs.DurationVar(&l.renewDeadline, "leader-elect-renew-deadline", 10*time.Second,
		"How long the leader keeps trying to renew before it stops; no write of the leader's starts later than this after its last renewal. Below the lease duration.")
	fs.DurationVar(&l.retryPeriod, "leader-elect-retry-period", 2*time.Second,
		"How often the leader renews and a standby tries to take over; a gracefully stopped leader's successor takes over within it.")
}

func (l leaseTimes) validate() error {
	switch {
	case l.retryPeriod <= 0 || l.renewDeadline <= l.retryPeriod:
		return errors.New("--leader-elect-renew-deadline must be above --leader-elect-retry-period, which must be positive")
	case l.duration-l.renewDeadline < time.Second:
		return errors.New("--leader-elect-lease-duration must be at least 1s above --leader-elect-renew-deadline: the margin is what keeps the old leader's writes before the new one's")
	}
	return nil
}

// leaseNamespace is the Lease's namespace: the flag's, else the pod's own.
func leaseNamespace(flagged string) (string, error) {
	if flagged != "" {
		return flagged, nil
	}
	b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
	if err != nil {
		return "", fmt.Errorf("--leader-election-namespace is required outside a pod: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// managerLease is the operator's leader lease, which tells fence each renewal.
func managerLease(cfg *rest.Config, ns string, l leaseTimes, fence *leasefence.Fence) (resourcelock.Interface, error) {
	// One hung request does not lose the lease. cfg is not fenced yet (electLeader).
	lock, err := leaseLock(cfg, ns, "flow-ci.flowci.dev", l.renewDeadline/2)
	if err != nil {
		return nil, fmt.Errorf("the operator's lease: %w", err)
	}
	return &fencingLock{Interface: lock, fence: fence}, nil
}

// fencingLock tells the fence when a write of the lease record keeps it ours (taking or
// renewing it), counting from before the request, and when it gives it up. It also keeps
// a replica from releasing a lease that is no longer its own: client-go's elector, on its
// way out, reads the lease (which refreshes the lock's resourceVersion) but decides from
// the record it saw before, so a leader that resumes from a pause would write an empty
// holder over its successor's lease and free it for a third replica.
type fencingLock struct {
	resourcelock.Interface
	fence *leasefence.Fence

	mu     sync.Mutex
	holder string // the holder in the record last read
}

func (l *fencingLock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	r, raw, err := l.Interface.Get(ctx)
	if err == nil && r != nil {
		l.mu.Lock()
		l.holder = r.HolderIdentity
		l.mu.Unlock()
	}
	return r, raw, err
}

func (l *fencingLock) Create(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	return l.record(r, func() error { return l.Interface.Create(ctx, r) })
}

func (l *fencingLock) Update(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	return l.record(r, func() error { return l.Interface.Update(ctx, r) })
}

func (l *fencingLock) record(r resourcelock.LeaderElectionRecord, write func() error) error {
	started := time.Now()
	if r.HolderIdentity != l.Identity() {
		// Releasing: the fence closes before the lease is free for another, and a lease
		// another replica holds by now is left alone.
		l.fence.Released()
		l.mu.Lock()
		ours := l.holder == l.Identity()
		l.mu.Unlock()
		if !ours {
			return nil
		}
		return write()
	}
	if err := write(); err != nil {
		return err
	}
	l.fence.Renewed(started)
	return nil
}

// fencedPoster posts commit statuses only within the fence, as the API writes are: a
// status on a forge is a write too, which a leader that lost its lease must not make.
type fencedPoster struct {
	commitstatus.Poster
	fence *leasefence.Fence
}

func (p fencedPoster) Post(ctx context.Context, provider forge.Provider, baseURL, repoURL, token string, s forge.Status) error {
	ctx, cancel, err := p.fence.Context(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	return p.Poster.Post(ctx, provider, baseURL, repoURL, token, s)
}
