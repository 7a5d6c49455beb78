package main

import (
	"runtime/debug"
	"testing"
)

// TestCollectOftenAtStartup: the start-up GC target is lowered only from a higher one,
// and the target to restore is GOGC's.
func TestCollectOftenAtStartup(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	cases := []struct{ gogc, during, restore int }{
		{100, startupGCPercent, 100},
		{200, startupGCPercent, 200},
		{10, 10, 10}, // already lower: kept
		{-1, -1, -1}, // off: kept off
	}
	for _, tc := range cases {
		debug.SetGCPercent(tc.gogc)
		restore := collectOftenAtStartup()
		during := debug.SetGCPercent(restore)
		if during != tc.during || restore != tc.restore {
			t.Errorf("GOGC %d: %d during start-up and %d to restore, want %d and %d", tc.gogc, during, restore, tc.during, tc.restore)
		}
	}
}
