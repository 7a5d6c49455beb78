package pipelinerun

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

func fetchRun(ns, secret, repo string) *v1alpha1.PipelineRun {
	r := &v1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "r", UID: types.UID(ns + secret + repo)},
		Spec: v1alpha1.PipelineRunSpec{RepoURL: repo, Branch: "main"}}
	if secret != "" {
		r.Spec.GitSecretRef = &v1alpha1.SecretReference{Name: secret}
	}
	return r
}

// TestFetchKeysNeverShareCredentials: cached files and shared resolves are keyed by
// namespace, Secret and its version, repository and what is read.
func TestFetchKeysNeverShareCredentials(t *testing.T) {
	base := fetchKey(fetchRun("a", "creds", "https://h/r.git"), "1", "file", "c0ffee", "build/flow-ci.yaml")
	for name, other := range map[string]string{
		"another namespace":     fetchKey(fetchRun("b", "creds", "https://h/r.git"), "1", "file", "c0ffee", "build/flow-ci.yaml"),
		"another Secret":        fetchKey(fetchRun("a", "other", "https://h/r.git"), "1", "file", "c0ffee", "build/flow-ci.yaml"),
		"a changed Secret":      fetchKey(fetchRun("a", "creds", "https://h/r.git"), "2", "file", "c0ffee", "build/flow-ci.yaml"),
		"no Secret":             fetchKey(fetchRun("a", "", "https://h/r.git"), "", "file", "c0ffee", "build/flow-ci.yaml"),
		"another repository":    fetchKey(fetchRun("a", "creds", "https://h/s.git"), "1", "file", "c0ffee", "build/flow-ci.yaml"),
		"another commit":        fetchKey(fetchRun("a", "creds", "https://h/r.git"), "1", "file", "decade", "build/flow-ci.yaml"),
		"another path":          fetchKey(fetchRun("a", "creds", "https://h/r.git"), "1", "file", "c0ffee", "ci.yaml"),
		"a resolve, not a read": fetchKey(fetchRun("a", "creds", "https://h/r.git"), "1", "resolve", "c0ffee", "build/flow-ci.yaml"),
	} {
		if other == base {
			t.Errorf("%s shares the key %q", name, base)
		}
	}
}

// TestFetcherSharesAndBounds: concurrent resolves of one key run once, files are served
// from the cache, the cache stays within its bytes, and the pool runs at most its slots.
func TestFetcherSharesAndBounds(t *testing.T) {
	f := newFetcher(2)
	var calls atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			c, err := f.resolve("k", func() (string, error) { calls.Add(1); <-release; return "sha", nil })
			if err != nil || c != "sha" {
				t.Errorf("resolve = %q, %v", c, err)
			}
		})
	}
	time.Sleep(50 * time.Millisecond) // let them all join the one call
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("8 concurrent resolves made %d calls", n)
	}
	reads := 0
	read := func() ([]byte, error) { reads++; return []byte("steps: []"), nil }
	for range 3 {
		if _, err := f.readFile("file-1", read); err != nil {
			t.Fatal(err)
		}
	}
	if reads != 1 {
		t.Errorf("3 reads of a cached file made %d calls", reads)
	}
	big := []byte(strings.Repeat("x", 200<<10))
	for i := range 200 {
		_, _ = f.readFile(string(rune(i))+"big", func() ([]byte, error) { return big, nil })
	}
	if f.files.size > maxFileCacheBytes {
		t.Errorf("file cache holds %d bytes, more than %d", f.files.size, maxFileCacheBytes)
	}

	var running, most atomic.Int32
	done := make(chan struct{}, 6)
	for i := range 6 {
		run := fetchRun("ns", "", "https://h/r.git")
		run.UID = types.UID(rune('a' + i))
		f.start(run, time.Now(), func(context.Context, time.Duration) fetched {
			n := running.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(20 * time.Millisecond)
			running.Add(-1)
			done <- struct{}{}
			return fetched{commit: "sha"}
		})
	}
	for range 6 {
		<-done
		<-f.wake
	}
	if m := most.Load(); m > 2 {
		t.Errorf("%d fetches ran at once on a pool of 2", m)
	}
}

// A namespace whose fetches hang holds its share of the pool only: another namespace's
// fetch runs at once, and the time a run waited behind others is counted, so that its
// pending timeout leaves it out.
func TestFetcherIsFairBetweenNamespaces(t *testing.T) {
	f := newFetcher(2)
	hang := make(chan struct{})
	for i := range 5 {
		run := fetchRun("greedy", "", "https://h/r.git")
		run.UID = types.UID(fmt.Sprint("g", i))
		f.start(run, time.Now(), func(context.Context, time.Duration) fetched { <-hang; return fetched{} })
	}
	other := fetchRun("other", "", "https://h/r.git")
	other.UID = "o"
	done := make(chan time.Duration, 1)
	f.start(other, time.Now(), func(_ context.Context, waited time.Duration) fetched { done <- waited; return fetched{commit: "sha"} })
	select {
	case waited := <-done:
		if waited > time.Second {
			t.Errorf("the other namespace's fetch waited %s", waited)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the other namespace's fetch did not run beside a hung one")
	}
	time.Sleep(100 * time.Millisecond)
	close(hang)
	for range 6 {
		<-f.wake
	}
	if w := f.waitedFor("g4"); w < 90*time.Millisecond {
		t.Errorf("the last greedy fetch waited %s for a slot; want it counted", w)
	}
	f.release("g4")
	if w := f.waitedFor("g4"); w != 0 {
		t.Errorf("released, yet %s is remembered", w)
	}
}

// A run deleted while its fetch queued costs no git call.
func TestFetchOfADeletedRunIsSkipped(t *testing.T) {
	f := newFetcher(1)
	hang := make(chan struct{})
	first := fetchRun("ns", "", "https://h/r.git")
	first.UID = "first"
	f.start(first, time.Now(), func(context.Context, time.Duration) fetched { <-hang; return fetched{} })
	gone := fetchRun("ns", "", "https://h/r.git")
	gone.UID = "gone"
	called := make(chan struct{}, 1)
	f.start(gone, time.Now(), func(context.Context, time.Duration) fetched { called <- struct{}{}; return fetched{} })
	f.release("gone")
	close(hang)
	<-f.wake
	select {
	case <-called:
		t.Fatal("the deleted run's fetch ran")
	case <-time.After(300 * time.Millisecond):
	}
}
