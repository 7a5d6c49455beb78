package render

import (
	"math/rand/v2"
	"testing"
)

// TestHeaviestAntichainMatchesBruteForce checks the flow against every subset of small
// random graphs.
func TestHeaviestAntichainMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 500 {
		n := 1 + rng.IntN(9)
		before := make([][]bool, n)
		for i := range before {
			before[i] = make([]bool, n)
		}
		// Random edges j → i for j < i, then the transitive closure, as Before gives.
		for i := range n {
			for j := range i {
				if rng.IntN(3) == 0 {
					before[i][j] = true
					for k := range n {
						before[i][k] = before[i][k] || before[j][k]
					}
				}
			}
		}
		w := make([]int64, n)
		for i := range w {
			w[i] = int64(rng.IntN(1000))
		}
		var want int64
		for set := 1; set < 1<<n; set++ {
			var sum int64
			ok := true
			for i := range n {
				if set&(1<<i) == 0 {
					continue
				}
				sum += w[i]
				for j := range n {
					if set&(1<<j) != 0 && before[i][j] {
						ok = false
					}
				}
			}
			if ok && sum > want {
				want = sum
			}
		}
		if got := heaviestAntichain(w, before); got != want {
			t.Fatalf("round %d: n=%d weights %v before %v: got %d, want %d", round, n, w, before, got, want)
		}
	}
}
