package main

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/internal/leasefence"
)

// A client on the fenced config writes only while the lease was renewed within the renew
// deadline, on the real API server: not before the lease is taken, not once a pause
// outlasted the deadline (until a renewal succeeds again), and not after the lease is
// given up. Reads pass all along.
func TestFencedClientFollowsTheLease(t *testing.T) {
	ctx := context.Background()
	ns := env.NewNamespace(t)
	times := leaseTimes{duration: 2 * time.Second, renewDeadline: 500 * time.Millisecond, retryPeriod: 100 * time.Millisecond}
	fence := leasefence.New(times.renewDeadline)
	lock, err := managerLease(env.Config, ns, times, fence)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(env.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(env.Config)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return leasefence.Wrap(rt, fence) })
	fenced, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	tryWrite := func() error {
		n++
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "w" + string(rune('a'+n))}}
		err := fenced.Create(ctx, cm)
		if errors.Is(err, leasefence.ErrFenced) {
			if gerr := c.Get(ctx, client.ObjectKeyFromObject(cm), &corev1.ConfigMap{}); !apierrors.IsNotFound(gerr) {
				t.Fatalf("a refused write reached the API server: %v", gerr)
			}
		}
		return err
	}
	if err := tryWrite(); !errors.Is(err, leasefence.ErrFenced) {
		t.Fatalf("wrote before taking the lease: %v", err)
	}
	rec := resourcelock.LeaderElectionRecord{HolderIdentity: lock.Identity(), LeaseDurationSeconds: 15,
		AcquireTime: metav1.Now(), RenewTime: metav1.Now()}
	if err := lock.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := tryWrite(); err != nil {
		t.Fatalf("the leader could not write: %v", err)
	}
	// A pause past the renew deadline: no renewal came.
	time.Sleep(times.renewDeadline + 100*time.Millisecond)
	if err := tryWrite(); !errors.Is(err, leasefence.ErrFenced) {
		t.Fatalf("wrote after the renew deadline: %v", err)
	}
	if err := lock.Update(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := fenced.Status().Update(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s"}}); errors.Is(err, leasefence.ErrFenced) {
		t.Fatalf("a renewed leader was fenced: %v", err)
	}
	// A release after another replica took the lease (the elector read it first) leaves
	// the successor's lease alone.
	cs := kubernetes.NewForConfigOrDie(env.Config)
	lease, err := cs.CoordinationV1().Leases(ns).Get(ctx, "flow-ci.flowci.dev", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other := "successor_1"
	lease.Spec.HolderIdentity = &other
	if _, err := cs.CoordinationV1().Leases(ns).Update(ctx, lease, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := lock.Get(ctx); err != nil {
		t.Fatal(err)
	}
	rec.HolderIdentity = ""
	if err := lock.Update(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if got, _ := cs.CoordinationV1().Leases(ns).Get(ctx, "flow-ci.flowci.dev", metav1.GetOptions{}); got == nil || got.Spec.HolderIdentity == nil || *got.Spec.HolderIdentity != other {
		t.Fatalf("a stale release freed the successor's lease: %+v", got)
	}
	if err := tryWrite(); !errors.Is(err, leasefence.ErrFenced) {
		t.Fatalf("wrote after giving the lease up: %v", err)
	}
	if err := fenced.List(ctx, &corev1.ConfigMapList{}); err != nil {
		t.Fatalf("a fenced replica could not read: %v", err)
	}
	if err := fenced.Status().Update(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s"}}); !errors.Is(err, leasefence.ErrFenced) {
		t.Fatalf("a status write after giving the lease up was not fenced: %v", err)
	}
}
