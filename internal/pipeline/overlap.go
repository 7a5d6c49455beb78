package pipeline

// Before says, for each pair of steps of All(), whether step j ends before step i
// starts: i waits for j, directly or through other steps. Finally steps wait for every
// step of the graph and not for each other.
func (p *Pipeline) Before() [][]bool {
	n := len(p.Steps) + len(p.Finally)
	index := make(map[string]int, len(p.Steps))
	for i, s := range p.Steps {
		index[s.Name] = i
	}
	before := make([][]bool, n)
	for i := range before {
		before[i] = make([]bool, n)
	}
	// The parser rejects cycles, so a walk in dependency order closes the relation.
	done := make([]bool, len(p.Steps))
	var visit func(i int)
	visit = func(i int) {
		if done[i] {
			return
		}
		done[i] = true
		for _, d := range p.Steps[i].DependsOn {
			j, ok := index[d]
			if !ok {
				continue
			}
			visit(j)
			before[i][j] = true
			for k, b := range before[j] {
				before[i][k] = before[i][k] || b
			}
		}
	}
	for i := range p.Steps {
		visit(i)
	}
	for f := len(p.Steps); f < n; f++ {
		for j := range p.Steps {
			before[f][j] = true
		}
	}
	return before
}

// MayOverlap says, for each pair of steps of All(), whether the two may run at the same
// time: neither waits for the other. The diagonal is false.
//
// Steps that run at once pairwise may overlap, so the relation bounds what a run needs
// at its peak (render.PeakRequests) and tells a graph that can run steps side by side
// from one that runs them in sequence.
func (p *Pipeline) MayOverlap() [][]bool {
	before := p.Before()
	out := make([][]bool, len(before))
	for i := range out {
		out[i] = make([]bool, len(before))
		for j := range out[i] {
			out[i][j] = i != j && !before[i][j] && !before[j][i]
		}
	}
	return out
}

// Parallel returns two steps that may run at the same time, by name, or ok false when
// the pipeline runs its steps strictly one after another.
func (p *Pipeline) Parallel() (a, b string, ok bool) {
	for i, row := range p.MayOverlap() {
		for j := i + 1; j < len(row); j++ {
			if row[j] {
				return p.Step(i).Name, p.Step(j).Name, true
			}
		}
	}
	return "", "", false
}
