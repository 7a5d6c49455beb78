package runstate

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestFairQueue(t *testing.T) {
	at := func(s int) time.Time { return time.Date(2026, 12, 1, 10, 0, s, 0, time.UTC) }
	cases := []struct {
		name string
		cs   []Candidate
		want []string
	}{
		{"creation order within one namespace", []Candidate{
			{Namespace: "a", Name: "a2", Created: at(2)}, {Namespace: "a", Name: "a1", Created: at(1)}, {Namespace: "a", Name: "a3", Created: at(3)},
		}, []string{"a1", "a2", "a3"}},
		{"a burst of one tenant does not starve another", []Candidate{
			{Namespace: "a", Name: "a0", Created: at(0), Active: true}, {Namespace: "a", Name: "a1", Created: at(1), Active: true},
			{Namespace: "a", Name: "a2", Created: at(2)}, {Namespace: "a", Name: "a3", Created: at(3)}, {Namespace: "a", Name: "a4", Created: at(4)},
			{Namespace: "b", Name: "b0", Created: at(9)}, {Namespace: "b", Name: "b1", Created: at(10)},
		}, []string{"b0", "b1", "a2", "a3", "a4"}}, // b holds no slot, a two: b first, then by age
		{"namespaces take turns, ties by age", []Candidate{
			{Namespace: "a", Name: "a1", Created: at(1)}, {Namespace: "a", Name: "a2", Created: at(2)},
			{Namespace: "b", Name: "b1", Created: at(3)}, {Namespace: "b", Name: "b2", Created: at(4)},
			{Namespace: "c", Name: "c1", Created: at(5)},
		}, []string{"a1", "b1", "c1", "a2", "b2"}},
		{"nothing waits", []Candidate{{Namespace: "a", Name: "a0", Active: true}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, i := range FairQueue(tc.cs) {
				got = append(got, tc.cs[i].Name)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
