package archive

import (
	"context"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/flow-ci/flow-ci/internal/archive"
)

// streams runs one streamer per container log and knows which logs are complete, so
// that a pass over a run starts what is missing and tells whether the run's logs are
// all stored.
type streams struct {
	ctx    context.Context // the streams' lifetime: the archive's, until stopAll
	cancel context.CancelFunc
	log    logr.Logger
	make   func(logSource) *streamer
	// ended is called (off the streamer's goroutine) when a stream stops, to look at
	// its run again.
	ended func(key archive.StreamKey)

	// running counts the streamers' goroutines, so that shutdown waits for their last
	// saves (wait).
	running sync.WaitGroup

	mu     sync.Mutex
	active map[archive.StreamKey]context.CancelFunc
	byRun  map[string]map[archive.StreamKey]bool // run UID → its streams, active or done
	done   map[archive.StreamKey]bool
}

func newStreams(ctx context.Context, log logr.Logger, mk func(logSource) *streamer, ended func(archive.StreamKey)) *streams {
	ctx, cancel := context.WithCancel(ctx)
	return &streams{ctx: ctx, cancel: cancel, log: log, make: mk, ended: ended,
		active: map[archive.StreamKey]context.CancelFunc{}, byRun: map[string]map[archive.StreamKey]bool{},
		done: map[archive.StreamKey]bool{}}
}

// ensure starts streaming src unless it streams already or is complete.
func (s *streams) ensure(src logSource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := src.key
	if s.active[k] != nil || s.done[k] || s.ctx.Err() != nil {
		return // (once stopped, none starts: wait must not race an Add)
	}
	if s.byRun[k.UID] == nil {
		s.byRun[k.UID] = map[archive.StreamKey]bool{}
	}
	s.byRun[k.UID][k] = true
	ctx, cancel := context.WithCancel(s.ctx)
	s.active[k] = cancel
	st := s.make(src)
	st.life = s.ctx
	s.running.Add(1)
	st.m.active.Inc()
	go func() {
		defer s.running.Done()
		defer st.m.active.Dec()
		err := st.run(ctx)
		s.mu.Lock()
		delete(s.active, k)
		if err == nil {
			s.done[k] = true
		}
		s.mu.Unlock()
		cancel()
		if err != nil && ctx.Err() == nil {
			s.log.Error(err, "streaming a log", "namespace", k.Namespace, "stream", k.Stream)
		}
		s.ended(k)
	}()
}

// stopAll stops every stream for good: the archive stops leading or running. Each
// stores the lines it had read before it returns (streamer.copy).
func (s *streams) stopAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cancel()
}

// stopping says the streams were stopped for good: a run whose streams ended for that
// reason is not complete, and must not be archived as if it were.
func (s *streams) stopping() bool { return s.ctx.Err() != nil }

// wait waits, at most d, until every streamer has returned; call it after stopAll.
func (s *streams) wait(d time.Duration) {
	done := make(chan struct{})
	go func() { s.running.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		s.log.Info("shutting down before every stream stored what it had read", "waited", d)
	}
}

// busy counts a run's streams that are still being read.
func (s *streams) busy(uid string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k := range s.byRun[uid] {
		if s.active[k] != nil {
			n++
		}
	}
	return n
}

// stop ends a run's active streams (the archive gave up waiting for them) and returns
// their keys, so that the caller records what is missing.
func (s *streams) stop(uid string) []archive.StreamKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	var stopped []archive.StreamKey
	for k := range s.byRun[uid] {
		if cancel := s.active[k]; cancel != nil {
			cancel()
			stopped = append(stopped, k)
		}
	}
	return stopped
}

// forget drops what is known of a run that is archived or gone.
func (s *streams) forget(uid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.byRun[uid] {
		if cancel := s.active[k]; cancel != nil {
			cancel()
		}
		delete(s.done, k)
	}
	delete(s.byRun, uid)
}

// usage is what each namespace's logs occupy in the store, kept as streams append.
type usage struct {
	mu     sync.Mutex
	stored map[string]int64
}

func (u *usage) add(ns string, n int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.stored == nil {
		u.stored = map[string]int64{}
	}
	u.stored[ns] += n
}

func (u *usage) set(all []archive.Usage) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.stored = map[string]int64{}
	for _, x := range all {
		u.stored[x.Namespace] = x.Stored
	}
}

func (u *usage) over(ns string, limit int64) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return limit > 0 && u.stored[ns] >= limit
}
