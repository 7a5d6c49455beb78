package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// archiveLease is the archive's leader lease. A replica takes it only once it has stood
// by for warm (--standby-window): when the leader stops, the replica that followed the
// logs all along takes over, not the one that just replaced the leader, whose copies
// reach back only to the kubelet's current files.
func archiveLease(cfg *rest.Config, ns string, warm time.Duration) (resourcelock.Interface, error) {
	// Half the renew deadline (10 s): one hung request does not lose the lease.
	lock, err := leaseLock(cfg, ns, "flow-ci-archive.flowci.dev", 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("the archive's lease: %w", err)
	}
	return &warmLock{Interface: lock, ready: time.Now().Add(warm), now: time.Now}, nil
}

// leaseLock is the Lease name in ns, through a client of its own (cfg as it is now, with
// requests bounded by timeout), held under an identity that starts with the host name,
// the pod's name, as controller-runtime's does.
func leaseLock(cfg *rest.Config, ns, name string, timeout time.Duration) (resourcelock.Interface, error) {
	host, err := os.Hostname()
	if err != nil {
		return nil, err
	}
	c := rest.CopyConfig(cfg)
	c.Timeout = timeout
	cs, err := kubernetes.NewForConfig(rest.AddUserAgent(c, "leader-election"))
	if err != nil {
		return nil, err
	}
	return resourcelock.New(resourcelock.LeasesResourceLock, ns, name,
		cs.CoreV1(), cs.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: host + "_" + string(uuid.NewUUID())})
}

// errWarming refuses to take the lease before the replica stood by long enough.
var errWarming = errors.New("standing by: this replica takes the lease once its copies of the logs reach back --standby-window")

// warmLock refuses to take a free lease before ready. Renewing comes only after taking.
type warmLock struct {
	resourcelock.Interface
	ready time.Time
	now   func() time.Time
}

func (l *warmLock) Create(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	if l.now().Before(l.ready) {
		return errWarming
	}
	return l.Interface.Create(ctx, r)
}

func (l *warmLock) Update(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	if l.now().Before(l.ready) {
		return errWarming
	}
	return l.Interface.Update(ctx, r)
}
