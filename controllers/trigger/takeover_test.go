package trigger

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gitsource"
	"github.com/flow-ci/flow-ci/internal/triggerstate"
)

// timingLister records when each poll (ls-remote) started.
type timingLister struct {
	countingLister
	mu sync.Mutex
	at []time.Time
}

func (l *timingLister) ListRefs(ctx context.Context, url string, auth *gitsource.Auth) (gitsource.Refs, error) {
	l.mu.Lock()
	l.at = append(l.at, time.Now())
	l.mu.Unlock()
	return l.countingLister.ListRefs(ctx, url, auth)
}

func (l *timingLister) polls() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.at...)
}

// TestPollsAfterATakeoverSpread: 20 triggers whose polls fell due while no replica led
// (last polled 70 s ago, every minute) are polled by the replica that takes over across
// the catch-up window, not all in its first seconds; each is polled once.
func TestPollsAfterATakeoverSpread(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := env.NewNamespace(t)
	_, url := gitRepo(t)
	const n = 20
	for i := range n {
		tr := newTrigger(ns, fmt.Sprintf("t-%02d", i), url, "main")
		tr.Spec.Interval = &metav1.Duration{Duration: time.Minute}
		g.Expect(env.Client.Create(ctx, tr)).To(Succeed())
		last := metav1.NewTime(time.Now().Add(-70 * time.Second))
		tr.Status.LastPollTime, tr.Status.ObservedGeneration = &last, tr.Generation
		g.Expect(env.Client.Status().Update(ctx, tr)).To(Succeed())
	}
	lister := &timingLister{countingLister: countingLister{next: GitLister{Options: []gitsource.Option{gitsource.WithAllowedNetworks(loopback)}}}}
	took := time.Now()
	startManager(t, ns, func(r *Reconciler) { r.Git = lister })
	g.Eventually(func() int { return len(lister.polls()) }).WithTimeout(triggerstate.CatchUpWindow + 15*time.Second).
		WithPolling(200 * time.Millisecond).Should(Equal(n))
	var first, last time.Duration
	perSecond := map[int]int{}
	for i, at := range lister.polls() {
		d := at.Sub(took)
		if i == 0 || d < first {
			first = d
		}
		last = max(last, d)
		perSecond[int(d/time.Second)]++
	}
	most := 0
	for _, c := range perSecond {
		most = max(most, c)
	}
	t.Logf("%d overdue triggers polled from %.1fs to %.1fs after the takeover, at most %d in one second", n, first.Seconds(), last.Seconds(), most)
	g.Expect(most).To(BeNumerically("<=", 5), "the burst: polls in the busiest second")
	g.Expect(last).To(BeNumerically(">", 10*time.Second), "spread across the window")
	g.Consistently(func() int { return len(lister.polls()) }).WithTimeout(2*time.Second).Should(Equal(n), "each polled once")
	list := &civ1alpha1.PipelineTriggerList{}
	g.Expect(env.Client.List(ctx, list, client.InNamespace(ns))).To(Succeed())
	for _, tr := range list.Items {
		g.Expect(tr.Status.LastPollTime.Time).To(BeTemporally(">", took), "%s polled", tr.Name)
	}
}
