package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/go-logr/logr"

	"github.com/flow-ci/flow-ci/internal/archive"
	"github.com/flow-ci/flow-ci/internal/archive/ingest"
	"github.com/flow-ci/flow-ci/internal/podlogs"
)

// Limits of one stream.
type Limits struct {
	// MaxLine caps one line; MaxLog one stored log (both in bytes).
	MaxLine, MaxLog int64
	// MaxNamespace caps what one namespace's logs occupy in the store.
	MaxNamespace int64
	// Chunk is the size at which buffered lines are stored; Flush the longest they wait.
	Chunk int
	Flush time.Duration
}

// logSource is one container's log: where to read it and where to store it.
type logSource struct {
	key       archive.StreamKey
	pod       string
	container string
}

// streamer copies one container's log into the store, from where the stored copy ends,
// until the container has ended and its log was read to the end.
type streamer struct {
	store  archive.Store
	pods   corev1client.PodsGetter
	limits Limits
	usage  *usage
	m      *Metrics
	log    logr.Logger
	src    logSource
	// life is the streams' lifetime: when it ends, the lines already read are still
	// stored (copy); when only this stream is stopped (the run was given up), not.
	life context.Context
	// full: the namespace's share was full, and the log was closed with a marker.
	full bool
	// adopt hands over a standby's shadow of the log, once, when this replica just
	// started leading (nil: none).
	adopt func(archive.StreamKey) (adopted, bool)
	// fromShadow: the stream being read is an adopted shadow, whose end is not proof
	// that the log ended (it may have stopped early): the kubelet's file is read once
	// more from what was stored.
	fromShadow bool
	// stored is what the log occupied in the store after the last Append this streamer
	// made or read, so that each Append adds only its own bytes to the namespace's usage.
	stored int64
}

// shutdownSave bounds how long a stopping archive waits for its streams' last saves.
const shutdownSave = 10 * time.Second

// errPodGone: the pod was deleted before its log was read to the end.
var errPodGone = errors.New("the pod was deleted before its log was read to the end")

// run streams until the log is complete, the pod is gone or ctx ends (the archive stops,
// or gives up on the run: then the caller records what is missing).
func (s *streamer) run(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		st, _, err := s.store.State(ctx, s.src.key)
		if err != nil {
			s.m.error("state")
			s.log.Info("reading a log's state", "stream", s.src.key.Stream, "error", err.Error())
			if !sleep(ctx, backoff(attempt)) {
				return ctx.Err()
			}
			continue
		}
		if st.Done {
			return nil
		}
		s.stored = st.Stored
		done, err := s.follow(ctx, st)
		switch {
		case done:
			return nil
		case errors.Is(err, errPodGone):
			return s.finish(ctx, errPodGone.Error())
		case errors.Is(err, archive.ErrComplete):
			return nil // completed elsewhere: given up on, with what is missing recorded
		case ctx.Err() != nil:
			return ctx.Err()
		}
		if err != nil {
			s.m.error("stream")
			s.log.Info("a log stream broke; resuming from the stored copy", "namespace", s.src.key.Namespace,
				"pod", s.src.pod, "stream", s.src.key.Stream, "attempt", attempt, "error", err.Error())
		}
		if !sleep(ctx, backoff(attempt)) {
			return ctx.Err()
		}
	}
}

// follow reads the log once, from where st ends. done says the log is complete and
// stored; otherwise the stream broke and is resumed from the saved state.
func (s *streamer) follow(ctx context.Context, st archive.LogState) (done bool, err error) {
	rc, err := s.open(ctx, st)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	f := ingest.New(st, s.limits.MaxLine, s.limits.MaxLog)
	err = s.copy(ctx, rc, f)
	if s.fromShadow {
		s.fromShadow = false
		if err == nil && !s.full && !f.Cut() {
			return false, nil // resumed from the kubelet's file, from what was stored
		}
	}
	if err != nil {
		return false, err
	}
	if s.full {
		return true, nil
	}
	if f.Cut() {
		return true, s.save(ctx, nil, f.State(), true)
	}
	ended, err := s.containerEnded(ctx)
	if err != nil || !ended {
		return false, err
	}
	// The container ended and its log was read to its end: keep an unfinished last line.
	return true, s.save(ctx, f.Flush(nil), f.State(), true)
}

// copy reads the stream into the filter and stores whole lines every Chunk bytes or
// Flush interval, until the stream ends (nil) or breaks.
func (s *streamer) copy(ctx context.Context, rc io.Reader, f *ingest.Filter) error {
	reads := make(chan []byte, 4)
	readErr := make(chan error, 1)
	stop := make(chan struct{})
	defer close(stop)
	// A followed log arrives a line per read: each read's buffer is handed back once
	// the filter has copied it, as a fresh one per read cost more than all the rest.
	free := make(chan []byte, cap(reads)+2)
	for range cap(free) {
		free <- make([]byte, 32<<10)
	}
	go readChunks(rc, free, reads, readErr, stop)
	// Saves outlive ctx by a little: when the archive stops, the lines already read are
	// stored before it goes, since the kubelet may rotate them out of reach before the
	// next replica reads the log again.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	go func() {
		select {
		case <-ctx.Done():
			if s.life != nil && s.life.Err() != nil {
				sleep(sctx, shutdownSave/2)
			}
			cancel()
		case <-sctx.Done():
		}
	}()
	tick := time.NewTicker(s.limits.Flush)
	defer tick.Stop()
	var out []byte
	for {
		select {
		case p := <-reads:
			out = f.Feed(p, out)
			free <- p[:cap(p)]
			if len(out) < s.limits.Chunk && !f.Cut() {
				continue
			}
		case <-tick.C:
		case err := <-readErr:
			for len(reads) > 0 {
				out = f.Feed(<-reads, out)
			}
			if serr := s.save(sctx, out, f.State(), false); serr != nil {
				return serr
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := s.save(sctx, out, f.State(), false); err != nil {
			return err
		}
		out = out[:0]
		if f.Cut() || s.full {
			return nil
		}
	}
}

// readChunks reads rc into buffers taken from free and sends what each read got on
// reads, until rc fails (the error on readErr) or stop closes.
func readChunks(rc io.Reader, free chan []byte, reads chan<- []byte, readErr chan<- error, stop <-chan struct{}) {
	for {
		var buf []byte
		select {
		case buf = <-free:
		case <-stop:
			return
		}
		n, err := rc.Read(buf)
		if n > 0 {
			select {
			case reads <- buf[:n]:
			case <-stop:
				return // the caller closes the stream
			}
		} else {
			free <- buf
		}
		if err != nil {
			readErr <- err
			return
		}
	}
}

// save stores chunk and the state it leads to; done marks the log complete.
func (s *streamer) save(ctx context.Context, chunk []byte, st archive.LogState, done bool) error {
	if len(chunk) == 0 && !done {
		return nil
	}
	full := s.usage.over(s.src.key.Namespace, s.limits.MaxNamespace) && !st.Cut
	if full {
		marker := fmt.Sprintf("\n[flow-ci: the namespace's archive is full (%d bytes); the rest was not stored]\n", s.limits.MaxNamespace)
		chunk, st.Cut, done = []byte(marker), true, true
	}
	st.Done = done
	saved, err := s.store.Append(ctx, s.src.key, chunk, st)
	if errors.Is(err, archive.ErrComplete) {
		return err // not an error of the store: run ends the stream
	}
	if err != nil {
		s.m.error("append")
		return fmt.Errorf("storing the log of %s: %w", s.src.key.Stream, err)
	}
	s.full = s.full || full
	s.usage.add(s.src.key.Namespace, saved.Stored-s.stored)
	s.stored = saved.Stored
	s.m.storedChunk(len(chunk), st.LastTime)
	return nil
}

// finish marks the log complete with what is missing from it.
func (s *streamer) finish(ctx context.Context, missing string) error {
	st, _, err := s.store.State(ctx, s.src.key)
	if err != nil {
		return err
	}
	if st.Done {
		return nil
	}
	st.Done = true
	tail := fmt.Sprintf("everything after byte %d: %s", st.Bytes, missing)
	if st.Missing != "" {
		tail = st.Missing + "; " + tail // the gaps noted before stay
	}
	st.Missing = tail
	_, err = s.store.Append(ctx, s.src.key, nil, st)
	return err
}

// containerEnded asks the API server (not the cache: the stream's end may come before
// the cache sees the container end) whether the container has terminated.
func (s *streamer) containerEnded(ctx context.Context) (bool, error) {
	pod, err := s.pods.Pods(s.src.key.Namespace).Get(ctx, s.src.pod, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		// Deleted: its container was stopped, and the stream that just ended carried
		// its log to that end.
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return !podlogs.FinishedAt(pod, s.src.container).IsZero(), nil
}

// podGone says whether the pod no longer exists (a log request's NotFound may also be
// about its node or its container).
func (s *streamer) podGone(ctx context.Context) bool {
	_, err := s.pods.Pods(s.src.key.Namespace).Get(ctx, s.src.pod, metav1.GetOptions{})
	return apierrors.IsNotFound(err)
}

func backoff(attempt int) time.Duration {
	d := time.Second << min(attempt, 5)
	return min(d, 30*time.Second)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
