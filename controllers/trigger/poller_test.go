package trigger

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// A namespace whose git server never answers holds its share of the poll pool only:
// another namespace's trigger is polled at once.
func TestPollerIsFairBetweenNamespaces(t *testing.T) {
	p := newPoller(DefaultPollers)
	hang := make(chan struct{})
	defer close(hang)
	for i := range 20 {
		tr := &v1alpha1.PipelineTrigger{ObjectMeta: metav1.ObjectMeta{Namespace: "greedy", Name: fmt.Sprint("t", i), UID: types.UID(fmt.Sprint("u", i))}}
		p.start(tr, time.Now(), "", func(ctx context.Context) (found, error) {
			select {
			case <-hang:
			case <-ctx.Done():
			}
			return found{}, ctx.Err()
		})
	}
	other := &v1alpha1.PipelineTrigger{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "t", UID: "o"}}
	p.start(other, time.Now(), "", func(context.Context) (found, error) {
		return found{heads: map[string]string{"main": "abc"}}, nil
	})
	select {
	case e := <-p.wake:
		if e.Object.UID != "o" {
			t.Fatalf("woke %s", e.Object.Name)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the other namespace's poll did not run beside a silent server")
	}
	if job := p.take("o"); job == nil || job.heads["main"] != "abc" {
		t.Fatalf("take = %+v", job)
	}
}
