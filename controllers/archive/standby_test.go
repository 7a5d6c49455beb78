package archive

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/kubernetes"

	"github.com/flow-ci/flow-ci/internal/archive"
	"github.com/flow-ci/flow-ci/internal/archive/ingest"
	"github.com/flow-ci/flow-ci/internal/archive/sqlstore"
)

var standbyT0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// stampedLines is lines [from, to) of a log as the kubelet serves it, line i printed
// at standbyT0 + i ms.
func stampedLines(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "%s line %05d\n", standbyT0.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano), i)
	}
	return b.String()
}

func plainLines(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "line %05d\n", i)
	}
	return b.String()
}

// fakeClock is the shadow's clock, moved by the test.
type fakeClock struct{ t atomic.Int64 }

func (c *fakeClock) set(t time.Time) { c.t.Store(t.UnixNano()) }
func (c *fakeClock) now() time.Time  { return time.Unix(0, c.t.Load()).UTC() }

// The new leader's streamer stores from a standby's shadow exactly what the old leader
// had not stored, each line once; when the shadow starts after the stored copy ends,
// the log says where lines may be missing.
func TestStreamerResumesFromTheStandby(t *testing.T) {
	for _, tc := range []struct {
		name                string
		stored, shadowFrom  int
		want, wantMissingAt string
	}{
		{name: "the shadow overlaps the stored copy", stored: 300, shadowFrom: 250, want: plainLines(0, 500)},
		{name: "the shadow starts after it", stored: 300, shadowFrom: 320, want: plainLines(0, 300) + "[flow-ci: lines printed between", wantMissingAt: "at byte 3300"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			store, err := sqlstore.OpenEmbedded(ctx, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			key := archive.StreamKey{UID: "uid", Namespace: "ns", Stream: "step-0-abcde"}
			limits := Limits{MaxLine: 1 << 16, MaxLog: 1 << 20, MaxNamespace: 1 << 30, Chunk: 1 << 16, Flush: time.Second}
			// The pod is gone (it never existed in this API server): its log is only in
			// the shadow.
			s := &streamer{store: store, usage: &usage{}, m: NewMetrics(), log: logr.Discard(), src: logSource{key: key, pod: "gone"},
				limits: limits, pods: kubernetes.NewForConfigOrDie(env.Config).CoreV1()}
			// The old leader stored lines 0-299.
			f := ingest.New(archive.LogState{}, limits.MaxLine, limits.MaxLog)
			if err := s.save(ctx, f.Feed([]byte(stampedLines(0, tc.stored)), nil), f.State(), false); err != nil {
				t.Fatal(err)
			}
			sb := newStandby(StandbyOptions{}, nil, logr.Discard(), time.Now, 1<<30)
			sb.perNS[key.Namespace] = 1
			sh := newShadow(func() {})
			sh.buf = []byte(stampedLines(tc.shadowFrom, 500))
			sh.err = io.EOF
			sb.shadows[key] = sh
			s.adopt = sb.adopt
			st, _, err := store.State(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			rc, err := s.open(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.copy(ctx, rc, ingest.New(st, limits.MaxLine, limits.MaxLog)); err != nil {
				t.Fatal(err)
			}
			got := readStored(t, store, key)
			if !strings.HasPrefix(got, tc.want) || tc.wantMissingAt == "" && got != tc.want {
				t.Errorf("stored %d bytes: %q...%q; want %d bytes starting %q", len(got), firstLine([]byte(got)), tail(got), len(tc.want), tail(tc.want))
			}
			st, _, _ = store.State(ctx, key)
			if tc.wantMissingAt != "" && !strings.Contains(st.Missing, tc.wantMissingAt) || tc.wantMissingAt == "" && st.Missing != "" {
				t.Errorf("missing %q; want it to name %q", st.Missing, tc.wantMissingAt)
			}
			if tc.wantMissingAt != "" && !strings.HasSuffix(got, plainLines(320, 500)) {
				t.Errorf("the lines after the gap were not stored: ends %q", tail(got))
			}
		})
	}
}

func readStored(t *testing.T, store archive.Store, key archive.StreamKey) string {
	t.Helper()
	r, err := store.OpenLog(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var b bytes.Buffer
	_, _ = io.Copy(&b, r)
	return b.String()
}

// The standby's budget is shared between namespaces first: one namespace's many logs
// do not shrink another's one.
func TestStandbyBudgetIsFairAcrossNamespaces(t *testing.T) {
	for _, tc := range []struct {
		name   string
		logs   map[string]int // namespace → its logs
		ns     string
		budget int64
		want   int
	}{
		{name: "one log has it all", logs: map[string]int{"a": 1}, ns: "a", budget: 10 << 20, want: 10 << 20},
		{name: "a loud namespace splits its half", logs: map[string]int{"a": 10, "b": 1}, ns: "a", budget: 10 << 20, want: 512 << 10},
		{name: "a quiet namespace keeps its half", logs: map[string]int{"a": 10, "b": 1}, ns: "b", budget: 10 << 20, want: 5 << 20},
		{name: "three namespaces", logs: map[string]int{"a": 2, "b": 1, "c": 1}, ns: "c", budget: 9 << 20, want: 3 << 20},
		{name: "never less than a few lines", logs: map[string]int{"a": 100}, ns: "a", budget: 1 << 20, want: minShare},
	} {
		sb := &standby{opts: StandbyOptions{Budget: tc.budget}, perNS: tc.logs}
		if got := sb.limitLocked(tc.ns); got != tc.want {
			t.Errorf("%s: %d bytes for a log of %s, want %d", tc.name, got, tc.ns, tc.want)
		}
	}
}

// prune forgets a shadow whose log ended a window ago, and, a window after the replica
// began to lead, every shadow nobody adopted; until then it keeps them for adoption.
func TestStandbyForgetsWhatNobodyNeeds(t *testing.T) {
	clock := &fakeClock{}
	clock.set(standbyT0)
	key := func(s string) archive.StreamKey { return archive.StreamKey{UID: "u", Namespace: "ns", Stream: s} }
	running, ended, old := newShadow(func() {}), newShadow(func() {}), newShadow(func() {})
	ended.err, ended.endedAt = io.EOF, standbyT0.Add(-10*time.Second)
	old.err, old.endedAt = io.EOF, standbyT0.Add(-40*time.Second)
	sb := newStandby(StandbyOptions{Window: 30 * time.Second, Budget: 1 << 20}, nil, logr.Discard(), clock.now, 1<<30)
	sb.shadows = map[archive.StreamKey]*shadow{key("running"): running, key("ended"): ended, key("old"): old}
	sb.perNS = map[string]int{"ns": 3}
	has := func(names ...string) error {
		if len(sb.shadows) != len(names) {
			return fmt.Errorf("keeps %d shadows, want %v", len(sb.shadows), names)
		}
		for _, n := range names {
			if sb.shadows[key(n)] == nil {
				return fmt.Errorf("dropped %s, want %v", n, names)
			}
		}
		return nil
	}
	sb.prune()
	if err := has("running", "ended"); err != nil {
		t.Error("standing by:", err)
	}
	sb.lead()
	clock.set(standbyT0.Add(29 * time.Second))
	sb.prune()
	if err := has("running"); err != nil {
		t.Error("just leading:", err)
	}
	if sh, ok := sb.adopt(key("running")); !ok {
		t.Error("the running log's shadow was not handed over")
	} else {
		_ = sh.rc.Close()
	}
	if sb.perNS["ns"] != 0 {
		t.Errorf("counts %d shadows of ns after all went", sb.perNS["ns"])
	}
	sb.shadows[key("late")], sb.perNS["ns"] = newShadow(func() {}), 1
	clock.set(standbyT0.Add(31 * time.Second))
	sb.prune()
	if err := has(); err != nil {
		t.Error("a window after leading:", err)
	}
}

// A shadow filling while the standby prunes: each takes the other's lock, and neither
// may wait for the other (a deadlock here once stopped the new leader for good).
func TestStandbyPrunesWhileShadowsFill(t *testing.T) {
	key := archive.StreamKey{UID: "u", Namespace: "ns", Stream: "step-0-abcde"}
	pr, pw := io.Pipe()
	sh := newShadow(func() { _ = pr.Close() })
	sb := newStandby(StandbyOptions{Window: time.Second, Budget: minShare}, nil, logr.Discard(), time.Now, 1<<30)
	sb.shadows, sb.perNS = map[archive.StreamKey]*shadow{key: sh}, map[string]int{"ns": 1}
	budget := int64(1 << 40)
	go func() {
		_, _ = sh.fill(pr, &budget, func() int { // as the standby's follow does
			sb.mu.Lock()
			defer sb.mu.Unlock()
			return sb.limitLocked(key.Namespace)
		}, time.Now)
	}()
	go func() {
		for i := 0; ; i += 10 {
			if _, err := pw.Write([]byte(stampedLines(i, i+10))); err != nil {
				return
			}
		}
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
			sb.prune()
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the standby's prune and a shadow's fill wait for each other")
	}
	if n := sh.size(); n > minShare+minShare/4+32<<10 {
		t.Errorf("the shadow holds %d bytes over a %d-byte share", n, minShare)
	}
	_ = pr.Close()
}

// The new leader reads the shadow when it reaches back to the stored copy; else
// whichever of the kubelet's file and the shadow starts earlier.
func TestTakeoverPicksTheStreamThatReachesBack(t *testing.T) {
	at := func(s int) time.Time { return standbyT0.Add(time.Duration(s) * time.Second) }
	for _, tc := range []struct {
		name                    string
		stored, shadow, kubelet time.Time
		pruned                  bool
		useShadow, useKubelet   bool
	}{
		{name: "the shadow repeats the stored line", stored: at(10), shadow: at(5), useShadow: true},
		{name: "the shadow starts at the stored line", stored: at(10), shadow: at(10), useShadow: true},
		{name: "nothing stored yet", shadow: at(5), useShadow: true},
		{name: "nothing stored, the copy dropped its start", shadow: at(50), pruned: true, kubelet: at(5), useKubelet: true},
		{name: "an empty shadow", stored: at(10), kubelet: at(9), useKubelet: true},
		{name: "the kubelet still has the stored line", stored: at(10), shadow: at(20), kubelet: at(10), useKubelet: true},
		{name: "both start after it, the kubelet earlier", stored: at(10), shadow: at(20), kubelet: at(15), useKubelet: true},
		{name: "both start after it, the shadow earlier", stored: at(10), shadow: at(15), kubelet: at(20)},
		{name: "the kubelet sends nothing", stored: at(10), shadow: at(15)},
	} {
		if got := reaches(adopted{first: tc.shadow, pruned: tc.pruned}, tc.stored); got != tc.useShadow {
			t.Errorf("%s: the shadow reaches back = %v", tc.name, got)
		}
		if tc.useShadow {
			continue
		}
		if got := kubeletFirst(tc.kubelet, tc.shadow); got != tc.useKubelet {
			t.Errorf("%s: the kubelet's file first = %v", tc.name, got)
		}
	}
}

// firstStamp reads the first line's timestamp and gives back every byte; a stream that
// sends nothing within the wait gives no timestamp.
func TestFirstStamp(t *testing.T) {
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte(stampedLines(0, 1)[:10])) // a timestamp split over two writes
		_, _ = pw.Write([]byte(stampedLines(0, 1)[10:] + stampedLines(1, 3)))
		_ = pw.Close()
	}()
	first, rc := firstStamp(pr, 5*time.Second)
	all, _ := io.ReadAll(rc)
	if !first.Equal(standbyT0) || string(all) != stampedLines(0, 3) {
		t.Errorf("first %v, read %q", first, all)
	}
	quiet, _ := io.Pipe()
	start := time.Now()
	first, rc = firstStamp(quiet, 50*time.Millisecond)
	if !first.IsZero() || time.Since(start) > 5*time.Second {
		t.Errorf("a quiet stream: first %v after %v", first, time.Since(start))
	}
	if _, err := rc.Read(make([]byte, 1)); err == nil {
		t.Error("a quiet stream given back open")
	}
}
