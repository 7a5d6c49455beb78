// Package fairpool runs tasks on a bounded number of goroutines, fairly between keys:
// the operator's git fetches, trigger polls and commit status posts, keyed by
// namespace. Each key has its own queue, a free slot goes to the next key in turn that
// has work, and no key holds more than its share of the slots at once, so one tenant's
// burst, or a server of theirs that never answers, cannot keep another tenant's work
// from starting.
package fairpool

import (
	"container/list"
	"sync"
)

// Pool is a fair, bounded pool. The zero value is not usable; use New.
type Pool struct {
	slots, perKey int

	mu       sync.Mutex
	queues   map[string]*list.List // of func(), per key with queued work
	ring     []string              // keys with queued work, in turn order
	next     int                   // the ring index whose turn it is
	busy     int
	inflight map[string]int
}

// New returns a pool that runs at most slots tasks at once, at most perKey of them for
// one key. perKey is clamped to [1, slots].
func New(slots, perKey int) *Pool {
	slots = max(slots, 1)
	return &Pool{
		slots:    slots,
		perKey:   min(max(perKey, 1), slots),
		queues:   map[string]*list.List{},
		inflight: map[string]int{},
	}
}

// DefaultPerKey is the share of slots one key may hold: half, rounded up, so that with
// any pool of two or more slots another key always finds one free.
func DefaultPerKey(slots int) int { return (max(slots, 1) + 1) / 2 }

// Submit queues task under key; it runs on its own goroutine when a slot is free and it
// is key's turn. Tasks of one key start in the order they were submitted.
func (p *Pool) Submit(key string, task func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	q, ok := p.queues[key]
	if !ok {
		q = list.New()
		p.queues[key] = q
		p.ring = append(p.ring, key)
	}
	q.PushBack(task)
	p.dispatch()
}

// Queued is how many tasks wait for a slot, over every key.
func (p *Pool) Queued() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, q := range p.queues {
		n += q.Len()
	}
	return n
}

// dispatch starts queued tasks while slots are free, taking keys in turn and skipping
// a key that holds its share. The lock is held.
func (p *Pool) dispatch() {
	for p.busy < p.slots && len(p.ring) > 0 {
		started := false
		for tried := 0; tried < len(p.ring); tried++ {
			i := (p.next + tried) % len(p.ring)
			key := p.ring[i]
			if p.inflight[key] >= p.perKey {
				continue
			}
			q := p.queues[key]
			task := q.Remove(q.Front()).(func())
			if q.Len() == 0 {
				delete(p.queues, key)
				p.ring = append(p.ring[:i], p.ring[i+1:]...)
				p.next = i // the key after it moved into this index
			} else {
				p.next = i + 1
			}
			if len(p.ring) > 0 {
				p.next %= len(p.ring)
			} else {
				p.next = 0
			}
			p.busy++
			p.inflight[key]++
			go p.run(key, task)
			started = true
			break
		}
		if !started {
			return // every key with work holds its share
		}
	}
}

func (p *Pool) run(key string, task func()) {
	defer func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.busy--
		if p.inflight[key]--; p.inflight[key] == 0 {
			delete(p.inflight, key)
		}
		p.dispatch()
	}()
	task()
}
