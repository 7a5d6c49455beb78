package archive

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/internal/archive"
)

// adopted is a standby's shadow handed over to a streamer.
type adopted struct {
	rc    io.ReadCloser
	bytes int
	// first is the kubelet's timestamp of its first line (zero: it holds none).
	first time.Time
	// pruned: it does not hold the log from the start of the kubelet's file it read.
	pruned bool
	// (a shadow's end of stream is not the log's: see streamer.fromShadow)
}

// peekWait bounds how long open waits for the kubelet's first line when it compares
// the kubelet's file with a shadow: a line it still has comes at once.
const peekWait = 2 * time.Second

// open is the log from where st ends: the standby's shadow of it if it reaches back to
// the stored copy's last line, else whichever of the shadow and the kubelet's current
// file (from that line's second) starts earlier, so that a takeover never keeps less
// than a plain restart would.
func (s *streamer) open(ctx context.Context, st archive.LogState) (io.ReadCloser, error) {
	var sh adopted
	ok := false
	if s.adopt != nil {
		sh, ok = s.adopt(s.src.key)
		s.adopt = nil
		s.log.V(1).Info("opening a log", "namespace", s.src.key.Namespace, "stream", s.src.key.Stream,
			"standby copy", ok, "copy", sh.first, "stored", st.LastTime)
	}
	if ok && reaches(sh, st.LastTime) {
		return s.useShadow(ctx, sh), nil
	}
	rc, err := s.openKubelet(ctx, st)
	if !ok {
		return rc, err
	}
	if err != nil {
		return s.useShadow(ctx, sh), nil
	}
	first, rc := firstStamp(rc, peekWait)
	s.log.Info("the standby's copy of a log does not reach back to the stored copy", "namespace", s.src.key.Namespace,
		"stream", s.src.key.Stream, "stored", st.LastTime, "copy", sh.first, "kubelet", first)
	if kubeletFirst(first, sh.first) {
		_ = sh.rc.Close()
		return rc, nil
	}
	_ = rc.Close()
	return s.useShadow(ctx, sh), nil
}

// reaches says the shadow repeats the stored copy's last line (stamped last), so
// nothing lies between them; with nothing stored, that it holds what it first read
// whole.
func reaches(sh adopted, last time.Time) bool {
	if last.IsZero() {
		return !sh.first.IsZero() && !sh.pruned
	}
	return !sh.first.IsZero() && !sh.first.After(last)
}

// kubeletFirst says the kubelet's file, whose first line since the stored line's second
// is stamped kubelet, starts no later than the shadow's, stamped shadow (zero: none).
func kubeletFirst(kubelet, shadow time.Time) bool {
	return !kubelet.IsZero() && (shadow.IsZero() || !kubelet.After(shadow))
}

// useShadow reads a handed-over shadow until ctx ends (the run is given up on, or the
// archive stops), as a stream from the API server would.
func (s *streamer) useShadow(ctx context.Context, sh adopted) io.ReadCloser {
	s.log.Info("resuming a log from the standby's copy", "namespace", s.src.key.Namespace,
		"stream", s.src.key.Stream, "bytes", sh.bytes)
	context.AfterFunc(ctx, func() { _ = sh.rc.Close() })
	s.fromShadow = true
	return sh.rc
}

// openKubelet follows the kubelet's current file from the stored last line's second.
func (s *streamer) openKubelet(ctx context.Context, st archive.LogState) (io.ReadCloser, error) {
	rc, err := s.pods.Pods(s.src.key.Namespace).GetLogs(s.src.pod, followFrom(s.src.container, st.LastTime)).Stream(ctx)
	if apierrors.IsNotFound(err) && s.podGone(ctx) {
		return nil, errPodGone
	}
	if err != nil {
		return nil, fmt.Errorf("opening the log of %s/%s: %w", s.src.key.Namespace, s.src.pod, err)
	}
	return rc, nil
}

// followFrom follows a container's log, timestamped, from the second of the line
// stamped last (zero: from the start of the kubelet's current file). sinceTime has
// whole seconds: the reader skips what it has of that second (ingest.Resume).
func followFrom(container string, last time.Time) *corev1.PodLogOptions {
	opts := &corev1.PodLogOptions{Container: container, Follow: true, Timestamps: true}
	if !last.IsZero() {
		since := metav1.NewTime(last.Truncate(time.Second))
		opts.SinceTime = &since
	}
	return opts
}

// firstStamp reads rc up to its first line's timestamp, for at most wait, and returns
// the timestamp (zero when none came) and rc with what was read put back.
func firstStamp(rc io.ReadCloser, wait time.Duration) (time.Time, io.ReadCloser) {
	got := make(chan []byte, 1)
	go func() {
		var head []byte
		p := make([]byte, 4096)
		for !bytes.Contains(head, []byte(" ")) && len(head) < 64 {
			n, err := rc.Read(p)
			head = append(head, p[:n]...)
			if err != nil {
				break
			}
		}
		got <- head
	}()
	var head []byte
	select {
	case head = <-got:
	case <-time.After(wait):
		_ = rc.Close() // nothing since the stored line's second: its read ends
		head = <-got
	}
	return stampOf(head), readCloser{io.MultiReader(bytes.NewReader(head), rc), rc}
}

type readCloser struct {
	io.Reader
	io.Closer
}
