package ingest

import (
	"testing"
	"time"
)

func TestResumeHad(t *testing.T) {
	at := func(n int) time.Time { return t0.Add(time.Duration(n)) }
	for _, tc := range []struct {
		name  string
		r     Resume
		lines []time.Time
		want  []bool
	}{
		{name: "before the point", r: Resume{Time: at(5), Skip: 1}, lines: []time.Time{at(3), at(4)}, want: []bool{true, true}},
		{name: "the point's lines by count", r: Resume{Time: at(5), Skip: 2}, lines: []time.Time{at(5), at(5), at(5)}, want: []bool{true, true, false}},
		{name: "after the point", r: Resume{Time: at(5), Skip: 1}, lines: []time.Time{at(6)}, want: []bool{false}},
		{name: "no copy", lines: []time.Time{at(1)}, want: []bool{false}},
	} {
		r := tc.r
		for i, l := range tc.lines {
			if got := r.Had(l); got != tc.want[i] {
				t.Errorf("%s: line %d had = %v, want %v", tc.name, i, got, tc.want[i])
			}
		}
	}
}
