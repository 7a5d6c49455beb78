package runstate

import (
	"sort"
	"time"
)

// Candidate is a run for one of the operator's active slots (--max-active-runs).
type Candidate struct {
	Namespace, Name string
	Created         time.Time
	// Active runs hold a slot; the others wait for one.
	Active bool
}

// FairQueue orders the waiting candidates for the free slots. Namespaces take turns: the
// next run is the oldest waiting run of the namespace that holds the fewest slots
// counting those already handed out, so one tenant's burst cannot fill the queue ahead
// of everyone else. It returns the indexes of waiting candidates in admission order.
func FairQueue(cs []Candidate) []int {
	held := map[string]int{}
	waiting := map[string][]int{}
	for i, c := range cs {
		if c.Active {
			held[c.Namespace]++
		} else {
			waiting[c.Namespace] = append(waiting[c.Namespace], i)
		}
	}
	for _, q := range waiting {
		sort.Slice(q, func(a, b int) bool { return before(cs[q[a]], cs[q[b]]) })
	}
	var out []int
	for len(waiting) > 0 {
		next := ""
		for ns, q := range waiting {
			switch {
			case next == "":
				next = ns
			case held[ns] != held[next]:
				if held[ns] < held[next] {
					next = ns
				}
			case before(cs[q[0]], cs[waiting[next][0]]):
				next = ns
			}
		}
		q := waiting[next]
		out = append(out, q[0])
		held[next]++
		if len(q) == 1 {
			delete(waiting, next)
		} else {
			waiting[next] = q[1:]
		}
	}
	return out
}

func before(a, b Candidate) bool {
	if !a.Created.Equal(b.Created) {
		return a.Created.Before(b.Created)
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}
