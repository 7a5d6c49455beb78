package render

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/flow-ci/flow-ci/internal/pipeline"
)

// PeakRequests bounds what a run's steps request at once, per resource, when at most
// maxParallel of them run together (0: no bound). Steps that run at once never wait
// for one another, so the peak is at most the heaviest set of steps of which none
// waits for another (heaviestAntichain, exact). With maxParallel it is also at most the
// heaviest maxParallel steps, and at most, for the heaviest step of the set, its own
// request plus the heaviest maxParallel-1 of the steps that may overlap it. The
// smallest of these bounds is kept; none is below the real peak. A step that will not
// run (skip[i], such as a step a resume reuses) requests nothing.
func PeakRequests(p *pipeline.Pipeline, cfg Config, maxParallel int, skip []bool) corev1.ResourceList {
	n := len(p.Steps) + len(p.Finally)
	reqs := make([]corev1.ResourceList, n)
	var names []corev1.ResourceName
	for i := range reqs {
		if i < len(skip) && skip[i] {
			continue
		}
		reqs[i] = StepPodResources(p, i, cfg).Requests
		for name := range reqs[i] {
			if !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
	}
	before, overlap := p.Before(), p.MayOverlap()
	peak := corev1.ResourceList{}
	for _, name := range names {
		w := make([]int64, n)
		for i := range w {
			w[i] = units(reqs[i][name], name)
		}
		most := heaviestAntichain(w, before)
		if maxParallel > 0 {
			var perStep int64
			for i := range n {
				var others []int64
				for j := range n {
					if overlap[i][j] {
						others = append(others, w[j])
					}
				}
				perStep = max(perStep, w[i]+heaviest(others, maxParallel-1))
			}
			most = min(most, heaviest(w, maxParallel), perStep)
		}
		if most > 0 {
			peak[name] = quantity(most, name)
		}
	}
	return peak
}

// units are millicores for cpu and bytes for the rest, so that sums stay within int64.
func units(q resource.Quantity, name corev1.ResourceName) int64 {
	if name == corev1.ResourceCPU {
		return q.MilliValue()
	}
	return q.Value()
}

func quantity(v int64, name corev1.ResourceName) resource.Quantity {
	if name == corev1.ResourceCPU {
		return *resource.NewMilliQuantity(v, resource.DecimalSI)
	}
	return *resource.NewQuantity(v, resource.BinarySI)
}

// heaviest is the sum of the k largest weights.
func heaviest(w []int64, k int) int64 {
	w = slices.Clone(w)
	slices.Sort(w)
	slices.Reverse(w)
	var sum int64
	for _, x := range w[:min(max(k, 0), len(w))] {
		sum += x
	}
	return sum
}

// heaviestAntichain is the largest total weight of steps none of which waits for
// another. By the weighted form of Dilworth's theorem that is the total weight minus
// the maximum flow through the network source → x_out (capacity w(x)), x_out → y_in
// whenever y waits for x (unbounded), y_in → sink (w(y)).
func heaviestAntichain(w []int64, before [][]bool) int64 {
	n := len(w)
	src, sink := 2*n, 2*n+1
	f := newFlow(2*n + 2)
	var total int64
	for _, x := range w {
		total += x
	}
	for x := range n {
		f.edge(src, x, w[x])
		f.edge(n+x, sink, w[x])
		for y := range n {
			if before[y][x] {
				f.edge(x, n+y, total)
			}
		}
	}
	return total - f.max(src, sink)
}

// flow is a small Edmonds–Karp maximum flow: at most 202 nodes and 10,000 edges.
type flow struct {
	adj  [][]int
	to   []int
	capa []int64
}

func newFlow(n int) *flow { return &flow{adj: make([][]int, n)} }

func (f *flow) edge(a, b int, c int64) {
	f.adj[a] = append(f.adj[a], len(f.to))
	f.to, f.capa = append(f.to, b), append(f.capa, c)
	f.adj[b] = append(f.adj[b], len(f.to))
	f.to, f.capa = append(f.to, a), append(f.capa, 0)
}

func (f *flow) max(s, t int) int64 {
	var total int64
	for {
		via := make([]int, len(f.adj))
		for i := range via {
			via[i] = -1
		}
		queue := []int{s}
		for len(queue) > 0 && via[t] < 0 {
			u := queue[0]
			queue = queue[1:]
			for _, e := range f.adj[u] {
				if v := f.to[e]; f.capa[e] > 0 && via[v] < 0 && v != s {
					via[v] = e
					queue = append(queue, v)
				}
			}
		}
		if via[t] < 0 {
			return total
		}
		push := int64(-1)
		for v := t; v != s; v = f.to[via[v]^1] {
			if push < 0 || f.capa[via[v]] < push {
				push = f.capa[via[v]]
			}
		}
		for v := t; v != s; v = f.to[via[v]^1] {
			f.capa[via[v]] -= push
			f.capa[via[v]^1] += push
		}
		total += push
	}
}
