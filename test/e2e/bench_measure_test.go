//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// How BenchmarkClusterHandoff turns Jobs and pods into gaps, and prints them.

// edge is one handoff: the Job that starts once every Job in deps has ended.
type edge struct {
	job  string
	deps []string
}

// handoff holds the objects' own timestamps around one edge, each with 1 s resolution.
type handoff struct {
	depEnd  time.Time // the last-ending dependency's container finishedAt
	depSeen time.Time // the kubelet's last status write to that dependency's pods
	depDone time.Time // that dependency Job's first Complete or SuccessCriteriaMet
	created time.Time // the next Job's creationTimestamp
	started time.Time // the next Job's container startedAt
}

// measureShapes measures every shape's edges in ns and fails when one is missing.
func measureShapes(b *testing.B, ns string, shapes []benchShape, edges map[string][]edge) map[string][]handoff {
	out := map[string][]handoff{}
	for _, s := range shapes {
		if want := benchRuns * s.handoffs(); len(edges[s.name]) != want {
			b.Fatalf("%s: %d handoffs in the runs' status, want %d", s.name, len(edges[s.name]), want)
		}
		hs, err := measureHandoffs(ns, edges[s.name])
		if err != nil {
			b.Fatalf("%s: %v", s.name, err)
		}
		out[s.name] = hs
	}
	return out
}

// measureHandoffs reads each edge's timestamps from the Jobs and their pods, which are
// found by the Job's UID (a name can be reused; a UID cannot).
func measureHandoffs(ns string, edges []edge) ([]handoff, error) {
	ctx := context.Background()
	jobs, pods := &batchv1.JobList{}, &corev1.PodList{}
	if err := k8s.List(ctx, jobs, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	if err := k8s.List(ctx, pods, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	byName := map[string]*batchv1.Job{}
	for i := range jobs.Items {
		byName[jobs.Items[i].Name] = &jobs.Items[i]
	}
	podsOf := map[string][]corev1.Pod{}
	for _, p := range pods.Items {
		uid := p.Labels[batchv1.ControllerUidLabel]
		podsOf[uid] = append(podsOf[uid], p)
	}
	var out []handoff
	for _, e := range edges {
		next := byName[e.job]
		if next == nil {
			return nil, fmt.Errorf("no Job %q", e.job)
		}
		h := handoff{created: next.CreationTimestamp.Time}
		h.started, _, _ = containerSpan(podsOf[string(next.UID)])
		for _, d := range e.deps {
			dep := byName[d]
			if dep == nil {
				return nil, fmt.Errorf("no Job %q, a dependency of %q", d, e.job)
			}
			if _, end, seen := containerSpan(podsOf[string(dep.UID)]); end.After(h.depEnd) {
				h.depEnd, h.depSeen, h.depDone = end, seen, jobDone(dep)
			}
		}
		if h.started.IsZero() || h.depEnd.IsZero() || h.depSeen.IsZero() || h.depDone.IsZero() {
			return nil, fmt.Errorf("missing timestamps for %q after %v: %+v", e.job, e.deps, h)
		}
		out = append(out, h)
	}
	return out, nil
}

// containerSpan is the earliest container start and the latest container end among a
// Job's pods (more than one when a pod was retried), and the kubelet's last status
// write to them, from managedFields. That write reports the end, or comes after it when
// the kubelet also reports the pod's sandbox gone: it splits the wait for the Job's
// condition into the kubelet's part (at most) and the Job controller's (at least).
func containerSpan(pods []corev1.Pod) (start, end, seen time.Time) {
	for _, p := range pods {
		for _, mf := range p.ManagedFields {
			if mf.Manager == "kubelet" && mf.Subresource == "status" && mf.Time != nil && mf.Time.Time.After(seen) {
				seen = mf.Time.Time
			}
		}
		for _, cs := range p.Status.ContainerStatuses {
			t := cs.State.Terminated
			if t == nil {
				continue
			}
			if start.IsZero() || t.StartedAt.Time.Before(start) {
				start = t.StartedAt.Time
			}
			if t.FinishedAt.Time.After(end) {
				end = t.FinishedAt.Time
			}
		}
	}
	return start, end, seen
}

// jobDone is when the Job first said it succeeded: SuccessCriteriaMet or Complete,
// whichever came first; zero while it has not.
func jobDone(j *batchv1.Job) time.Time {
	var at time.Time
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobSuccessCriteriaMet) && c.Status == corev1.ConditionTrue &&
			(at.IsZero() || c.LastTransitionTime.Time.Before(at)) {
			at = c.LastTransitionTime.Time
		}
	}
	return at
}

func jobFailed(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobFailed || c.Type == batchv1.JobFailureTarget) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// percentiles are the p50 and p99 of sorted durations; p99 by nearest rank, which
// under 100 samples is the largest.
func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	n := len(d)
	p50 = (d[(n-1)/2] + d[n/2]) / 2
	return p50, d[int(math.Ceil(0.99*float64(n)))-1]
}

func gaps(hs []handoff, from, to func(handoff) time.Time) []time.Duration {
	out := make([]time.Duration, 0, len(hs))
	for _, h := range hs {
		out = append(out, to(h).Sub(from(h)))
	}
	slices.Sort(out)
	return out
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

// reportHandoffs prints the Markdown table to stdout and a line per series to the log.
func reportHandoffs(b *testing.B, shapes []benchShape, results map[string][]handoff) {
	var (
		depEnd  = func(h handoff) time.Time { return h.depEnd }
		depSeen = func(h handoff) time.Time { return h.depSeen }
		depDone = func(h handoff) time.Time { return h.depDone }
		created = func(h handoff) time.Time { return h.created }
		started = func(h handoff) time.Time { return h.started }
	)
	var t strings.Builder
	t.WriteString("\n## Step handoffs on the cluster\n\nFrom the objects' own timestamps, which have 1 s resolution: each gap is " +
		"±1 s. (a) pod end → next Job created, (b) pod end → next container started; pod end is the last-ending " +
		"dependency's container finishedAt, Job done its first Complete or SuccessCriteriaMet. The last four columns " +
		"split (b): the kubelet's last status write to that pod (managedFields; at or after it reported the end), " +
		"the Job done, the next Job created, its container started.\n\n" +
		"| shape | driver | handoffs | (a) p50 | (a) p99 | (b) p50 | (b) p99 | pod end → kubelet's last write p50 | → Job done p50 | → next Job created p50 | → container started p50 |\n" +
		"| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	ratios := map[string]float64{}
	for _, s := range shapes {
		medB := map[string]time.Duration{}
		for _, driver := range []string{"flow-ci", "hand", archiveDown} {
			hs := results[s.name+"/"+driver]
			if len(hs) == 0 {
				b.Fatalf("%s/%s: no samples", s.name, driver)
			}
			a50, a99 := percentiles(gaps(hs, depEnd, created))
			b50, b99 := percentiles(gaps(hs, depEnd, started))
			k50, _ := percentiles(gaps(hs, depEnd, depSeen))
			j50, _ := percentiles(gaps(hs, depSeen, depDone))
			r50, _ := percentiles(gaps(hs, depDone, created))
			c50, _ := percentiles(gaps(hs, created, started))
			medB[driver] = b50
			fmt.Fprintf(&t, "| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", s.title, driver, len(hs),
				secs(a50), secs(a99), secs(b50), secs(b99), secs(k50), secs(j50), secs(r50), secs(c50))
			b.Logf("%s, %s: %d handoffs; pod end → next Job p50 %s p99 %s; pod end → next container p50 %s p99 %s",
				s.title, driver, len(hs), secs(a50), secs(a99), secs(b50), secs(b99))
		}
		if medB["hand"] > 0 {
			ratios[s.name] = medB["flow-ci"].Seconds() / medB["hand"].Seconds()
			b.ReportMetric(ratios[s.name], "ratio-b-p50-"+s.name)
		}
		if medB["flow-ci"] > 0 {
			b.ReportMetric(medB[archiveDown].Seconds()/medB["flow-ci"].Seconds(), "archive-down-ratio-b-p50-"+s.name)
		}
	}
	t.WriteString("\n| shape | (b) p50 flow-ci ÷ hand-driven (goal ≤ 1.5×) |\n| --- | --- |\n")
	for _, s := range shapes {
		r, ok := ratios[s.name]
		text := fmt.Sprintf("%.2f×", r)
		if !ok {
			text = "n/a: the hand-driven median is 0 s"
		}
		fmt.Fprintf(&t, "| %s | %s |\n", s.title, text)
		b.Logf("%s: (b) p50 flow-ci ÷ hand-driven = %s (goal ≤ 1.5×)", s.title, text)
	}
	fmt.Println(t.String())
}
