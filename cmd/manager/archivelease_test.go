package main

import (
	"context"
	"errors"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// A replica younger than the standby window does not take a free lease; once warm, it
// does, on the real API server.
func TestArchiveLeaseWaitsUntilWarm(t *testing.T) {
	ctx := context.Background()
	ns := env.NewNamespace(t)
	lock, err := archiveLease(env.Config, ns, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	w := lock.(*warmLock)
	now := time.Now()
	w.now = func() time.Time { return now }
	rec := resourcelock.LeaderElectionRecord{HolderIdentity: w.Identity(), LeaseDurationSeconds: 15,
		AcquireTime: metav1.Now(), RenewTime: metav1.Now()}
	cs := kubernetes.NewForConfigOrDie(env.Config)
	if err := w.Create(ctx, rec); !errors.Is(err, errWarming) {
		t.Fatalf("a cold replica took the lease: %v", err)
	}
	if _, err := cs.CoordinationV1().Leases(ns).Get(ctx, "flow-ci-archive.flowci.dev", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the lease exists after a refused take: %v", err)
	}
	now = now.Add(time.Minute)
	if err := w.Create(ctx, rec); err != nil {
		t.Fatalf("a warm replica could not take the lease: %v", err)
	}
	got, err := cs.CoordinationV1().Leases(ns).Get(ctx, "flow-ci-archive.flowci.dev", metav1.GetOptions{})
	if err != nil || got.Spec.HolderIdentity == nil || *got.Spec.HolderIdentity != w.Identity() {
		t.Fatalf("lease %+v, %v; want held by %s", got, err, w.Identity())
	}
	if err := w.Update(ctx, rec); err != nil {
		t.Errorf("the holder could not renew: %v", err)
	}
}
