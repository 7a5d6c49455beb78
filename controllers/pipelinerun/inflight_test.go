package pipelinerun

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

func TestInFlightNoticesAStuckWorker(t *testing.T) {
	f := &InFlight{Limit: 50 * time.Millisecond}
	release := make(chan struct{})
	stuck := f.Wrap(reconcile.Func(func(context.Context, reconcile.Request) (reconcile.Result, error) {
		<-release
		return reconcile.Result{}, nil
	}))
	quick := f.Wrap(reconcile.Func(func(context.Context, reconcile.Request) (reconcile.Result, error) { return reconcile.Result{}, nil }))
	req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "run"}}
	if _, err := quick.Reconcile(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if err := f.Check(nil); err != nil {
		t.Fatalf("healthy: %v", err)
	}
	done := make(chan struct{})
	go func() { _, _ = stuck.Reconcile(context.Background(), req); close(done) }()
	// The check turns red once the reconcile is past the limit; poll, no timing claim.
	var err error
	for range 200 {
		if err = f.Check(nil); err != nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err == nil || !strings.Contains(err.Error(), "ns/run") {
		t.Fatalf("stuck worker not noticed: %v", err)
	}
	close(release)
	<-done
	if err := f.Check(nil); err != nil {
		t.Fatalf("after it returned: %v", err)
	}
}
