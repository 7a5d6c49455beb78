package archive

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/archive"
	"github.com/flow-ci/flow-ci/internal/podlogs"
)

// StandbyOptions configure what a replica that does not lead keeps of the logs the
// leader streams. The kubelet serves only a log's current file: when the leader stops,
// whatever a rotation moved out of that file before the next leader reads it is gone.
// A standby that read the same streams all along stores it instead.
type StandbyOptions struct {
	// Window is how long a standby keeps what it read: longer than the leader needs to
	// store a line and the lease to change hands. Zero: no standby.
	Window time.Duration
	// Budget bounds the bytes a standby holds over all its logs.
	Budget int64
}

// standby runs the shadows of a replica that does not lead. Once it leads, its
// streamers adopt them and it starts no more.
type standby struct {
	opts StandbyOptions
	pods corev1client.PodsGetter
	log  logr.Logger
	now  func() time.Time
	// readBudget bounds what one shadow reads: a printer the leader cuts off at the log
	// cap is not followed for ever here.
	readBudget int64

	mu      sync.Mutex
	ctx     context.Context // the replica's life, set by run
	shadows map[archive.StreamKey]*shadow
	// perNS counts the shadows of each namespace: the budget is shared fairly between
	// namespaces first, then between one namespace's logs.
	perNS map[string]int
	// leading: since when this replica leads (zero: it stands by).
	leading time.Time
	// exhausted: logs whose shadow spent its read budget, and when; they are not read
	// again (a day, then forgotten).
	exhausted map[archive.StreamKey]time.Time
	// runs: the UID of each run a shadow was started for, to drop its shadows when the
	// run is gone.
	runs map[types.NamespacedName]string
}

func newStandby(opts StandbyOptions, pods corev1client.PodsGetter, log logr.Logger, now func() time.Time, readBudget int64) *standby {
	return &standby{opts: opts, pods: pods, log: log, now: now, readBudget: readBudget,
		shadows: map[archive.StreamKey]*shadow{}, perNS: map[string]int{},
		exhausted: map[archive.StreamKey]time.Time{}, runs: map[types.NamespacedName]string{}}
}

// run prunes the shadows every second until ctx ends, then stops them.
func (sb *standby) run(ctx context.Context) error {
	sb.mu.Lock()
	sb.ctx = ctx
	sb.mu.Unlock()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			sb.mu.Lock()
			for k, s := range sb.shadows {
				sb.dropLocked(k, s)
			}
			sb.mu.Unlock()
			return nil
		case <-tick.C:
			sb.prune()
		}
	}
}

// prune keeps each shadow to the window and its share of the budget, and drops those
// nobody will adopt: ended before the window, or not adopted within a window of leading.
func (sb *standby) prune() {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	since := sb.now().Add(-sb.opts.Window)
	// A window after this replica began to lead, its streamers have adopted what they
	// needed; a shadow left over is of a log already complete.
	done := !sb.leading.IsZero() && sb.leading.Before(since)
	keepFrom := since
	if !sb.leading.IsZero() {
		keepFrom = time.Time{} // until adopted, by size only: a takeover may lag
	}
	for k, s := range sb.shadows {
		if s.endedBefore(since) || done {
			if s.exhausted() {
				sb.exhausted[k] = sb.now()
			}
			sb.dropLocked(k, s)
			continue
		}
		s.prune(keepFrom, sb.limitLocked(k.Namespace))
	}
	for k, at := range sb.exhausted {
		if at.Before(sb.now().Add(-24 * time.Hour)) {
			delete(sb.exhausted, k)
		}
	}
}

// forgetRun drops the shadows of a run that is gone.
func (sb *standby) forgetRun(name types.NamespacedName) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	uid, ok := sb.runs[name]
	if !ok {
		return
	}
	delete(sb.runs, name)
	for k, s := range sb.shadows {
		if k.UID == uid {
			sb.dropLocked(k, s)
		}
	}
}

// dropLocked stops a shadow and forgets it.
func (sb *standby) dropLocked(k archive.StreamKey, s *shadow) {
	s.cancel()
	sb.removeLocked(k)
}

func (sb *standby) removeLocked(k archive.StreamKey) {
	delete(sb.shadows, k)
	if sb.perNS[k.Namespace]--; sb.perNS[k.Namespace] <= 0 {
		delete(sb.perNS, k.Namespace)
	}
}

// limitLocked is the share of the budget of each shadow of namespace ns.
func (sb *standby) limitLocked(ns string) int {
	return int(max(minShare, sb.opts.Budget/int64(max(1, len(sb.perNS)))/int64(max(1, sb.perNS[ns]))))
}

// minShare is the least a shadow keeps, however many share the budget: a few lines.
const minShare = 64 << 10

// lead is called when the replica starts leading: no more shadows start.
func (sb *standby) lead() {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	sb.leading = sb.now()
}

// ensure starts reading src's log unless it is read already, the replica leads, or the
// container ended more than a window ago (the leader has stored it by then).
func (sb *standby) ensure(src logSource, pod *corev1.Pod) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if !sb.leading.IsZero() || sb.ctx == nil || sb.ctx.Err() != nil || !sb.exhausted[src.key].IsZero() {
		return
	}
	if old := sb.shadows[src.key]; old != nil {
		if !old.broke() {
			return
		}
		sb.dropLocked(src.key, old) // read it again, from the start of the kubelet's current file
	}
	if end := podlogs.FinishedAt(pod, src.container); !end.IsZero() && end.Before(sb.now().Add(-sb.opts.Window)) {
		return
	}
	ctx, cancel := context.WithCancel(sb.ctx)
	s := newShadow(cancel)
	sb.runs[types.NamespacedName{Namespace: src.key.Namespace, Name: pod.Annotations[v1alpha1.AnnotationRunName]}] = src.key.UID
	sb.shadows[src.key] = s
	sb.perNS[src.key.Namespace]++
	go func() {
		err := sb.follow(ctx, s, src)
		s.mu.Lock()
		s.endLocked(err, sb.now())
		s.mu.Unlock()
		if ctx.Err() == nil && err != nil {
			sb.log.Info("a standby's copy of a log ended", "namespace", src.key.Namespace, "stream", src.key.Stream, "end", err.Error())
		}
	}()
}

// follow reads src's log into s: from the start of the kubelet's current file
// (whatever the leader has not stored yet is in there or later), and again from where s
// ends when the stream ends early. It returns io.EOF when a stream read again brings
// nothing new: the container ended.
func (sb *standby) follow(ctx context.Context, s *shadow, src logSource) error {
	budget := sb.readBudget
	limit := func() int {
		sb.mu.Lock()
		defer sb.mu.Unlock()
		return sb.limitLocked(src.key.Namespace)
	}
	var since time.Time
	for attempt := 0; ; attempt++ {
		rc, err := sb.pods.Pods(src.key.Namespace).GetLogs(src.pod, followFrom(src.container, since)).Stream(ctx)
		if apierrors.IsNotFound(err) {
			return err // the pod is gone
		}
		if err != nil {
			if !sleep(ctx, backoff(attempt)) {
				return ctx.Err()
			}
			continue
		}
		added, err := s.fill(rc, &budget, limit, sb.now)
		_ = rc.Close()
		switch {
		case errors.Is(err, errShadowStopped), errors.Is(err, io.ErrClosedPipe):
			return err
		case errors.Is(err, io.EOF) && attempt > 0 && added == 0:
			return err // read again, nothing new: the container ended
		}
		// Ended early or broke: read it again from where the copy ends.
		if !sleep(ctx, time.Second) {
			return ctx.Err()
		}
		var ok bool
		if since, ok = s.reopen(); !ok {
			return io.EOF // handed over meanwhile: the streamer goes on from the kubelet
		}
		sb.log.V(1).Info("a standby's copy of a log ended early; reading it again", "namespace", src.key.Namespace,
			"stream", src.key.Stream, "since", since)
	}
}

// adopt hands over key's shadow, if this replica kept one whose stream did not break.
func (sb *standby) adopt(key archive.StreamKey) (adopted, bool) {
	if sb == nil {
		return adopted{}, false
	}
	sb.mu.Lock()
	s := sb.shadows[key]
	if s != nil {
		sb.removeLocked(key)
	}
	sb.mu.Unlock()
	if s == nil {
		return adopted{}, false
	}
	if s.broke() {
		s.cancel()
		return adopted{}, false
	}
	return s.handover(), true
}

// standbyReconciler starts the shadows of a run's running containers on a replica that
// does not lead (its controller needs no lease).
type standbyReconciler struct{ r *Reconciler }

func (s standbyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	sb := s.r.standby
	sb.mu.Lock()
	leading := !sb.leading.IsZero()
	sb.mu.Unlock()
	if leading {
		return ctrl.Result{}, nil
	}
	run := &v1alpha1.PipelineRun{}
	if err := s.r.Client.Get(ctx, req.NamespacedName, run); err != nil {
		if apierrors.IsNotFound(err) {
			sb.forgetRun(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	var pods corev1.PodList
	if err := s.r.Client.List(ctx, &pods, client.InNamespace(run.Namespace),
		client.MatchingFields{v1alpha1.IndexRunUID: string(run.UID)}); err != nil {
		return ctrl.Result{}, err
	}
	running := false
	for i := range pods.Items {
		pod := &pods.Items[i]
		if !pod.DeletionTimestamp.IsZero() {
			continue
		}
		for _, src := range s.r.sourcesOf(run, pod) {
			if podlogs.ContainerStarted(pod, src.container) {
				sb.ensure(src, pod)
				running = running || podlogs.FinishedAt(pod, src.container).IsZero()
			}
		}
	}
	if running {
		// Again while its containers run: a shadow whose stream broke is read anew.
		return ctrl.Result{RequeueAfter: sb.opts.Window / 2}, nil
	}
	return ctrl.Result{}, nil
}
