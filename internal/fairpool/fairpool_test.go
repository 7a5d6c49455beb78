package fairpool

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// With one slot, queued keys take turns: one task each, in the order the keys first
// queued work, then around again.
func TestTurns(t *testing.T) {
	p := New(1, 1)
	release := make(chan struct{})
	p.Submit("x", func() { <-release })
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	for _, name := range []string{"a1", "a2", "a3", "b1", "b2", "c1"} {
		wg.Add(1)
		p.Submit(name[:1], func() {
			defer wg.Done()
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
		})
	}
	if q := p.Queued(); q != 6 {
		t.Errorf("Queued = %d, want 6", q)
	}
	close(release)
	wg.Wait()
	if d := cmp.Diff([]string{"a1", "b1", "c1", "a2", "b2", "a3"}, order); d != "" {
		t.Errorf("start order (-want +got):\n%s", d)
	}
}

// A key whose tasks never end holds at most its share of the slots: another key's
// task starts at once, however many the first one queued.
func TestShareOfAHungKey(t *testing.T) {
	for _, tc := range []struct{ slots, perKey, hung int }{
		{4, 2, 2}, {2, 1, 1}, {1, 1, 1}, {5, DefaultPerKey(5), 3},
	} {
		t.Run(fmt.Sprintf("%d slots, %d per key", tc.slots, tc.perKey), func(t *testing.T) {
			p := New(tc.slots, tc.perKey)
			hang := make(chan struct{})
			defer close(hang)
			started := make(chan struct{}, 40)
			for range 40 {
				p.Submit("greedy", func() { started <- struct{}{}; <-hang })
			}
			for range tc.hung {
				<-started
			}
			done := make(chan struct{})
			p.Submit("other", func() { close(done) })
			if tc.slots == tc.hung {
				// Every slot is held: the other key is next in turn, not behind 38 tasks.
				if p.Queued() != 40-tc.hung+1 {
					t.Fatalf("Queued = %d", p.Queued())
				}
				return
			}
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("the other key's task did not start beside a hung key")
			}
			if got := p.Queued(); got != 40-tc.hung {
				t.Errorf("Queued = %d, want %d: the hung key ran more than its share", got, 40-tc.hung)
			}
		})
	}
}

func TestNewClamps(t *testing.T) {
	for _, tc := range []struct{ slots, perKey, wantSlots, wantPer int }{
		{0, 0, 1, 1}, {4, 9, 4, 4}, {4, -1, 4, 1}, {3, DefaultPerKey(3), 3, 2},
	} {
		p := New(tc.slots, tc.perKey)
		if p.slots != tc.wantSlots || p.perKey != tc.wantPer {
			t.Errorf("New(%d, %d) = %d slots, %d per key", tc.slots, tc.perKey, p.slots, p.perKey)
		}
	}
}
