package trigger

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	. "github.com/onsi/gomega"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gitsource"
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

// gatedLister holds its first ListRefs until release is closed.
type gatedLister struct {
	GitLister
	entered chan struct{}
	release chan struct{}
	once    *sync.Once
}

func (g gatedLister) ListRefs(ctx context.Context, url string, auth *gitsource.Auth) (gitsource.Refs, error) {
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
	return g.GitLister.ListRefs(ctx, url, auth)
}

// A poke that comes while a poll is in flight is answered by a poll after it, not at the
// next interval (an hour here).
func TestPokeDuringPollIsAnswered(t *testing.T) {
	ns := env.NewNamespace(t)
	_, url := gitRepo(t)
	gate := gatedLister{entered: make(chan struct{}), release: make(chan struct{}), once: &sync.Once{}}
	startManager(t, ns, func(r *Reconciler) {
		gate.GitLister = r.Git.(GitLister)
		r.Git = gate
	})
	create(t, newTrigger(ns, "poked", url, "main"))
	select {
	case <-gate.entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the trigger's first poll did not start")
	}
	released := false
	defer func() {
		if !released {
			close(gate.release)
		}
	}()
	g := NewWithT(t)
	value := time.Now().Format(time.RFC3339Nano)
	g.Eventually(func() error {
		tr := getTrigger(g, ns, "poked")
		tr.Annotations = map[string]string{v1alpha1.AnnotationRequestedAt: value}
		return env.Client.Update(context.Background(), tr)
	}).WithTimeout(10 * time.Second).Should(Succeed())
	time.Sleep(500 * time.Millisecond) // the poke's pass finds the first poll in flight
	close(gate.release)
	released = true
	g.Eventually(func(g Gomega) {
		g.Expect(getTrigger(g, ns, "poked").Status.LastHandledRequestedAt).To(Equal(value))
	}).WithTimeout(20 * time.Second).Should(Succeed())
}
