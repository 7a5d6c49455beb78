package shorten

import (
	"strings"
	"sync"
	"testing"
)

func TestTailWriter(t *testing.T) {
	tests := []struct {
		writes []string
		want   string
	}{
		{nil, ""},
		{[]string{"ab", "cd"}, "abcd"},
		{[]string{"abc", "defgh"}, "defgh"},
		{[]string{strings.Repeat("x", 20), "yz"}, "xxxyz"},
	}
	for _, tc := range tests {
		tw := &TailWriter{Max: 5}
		for _, w := range tc.writes {
			if n, err := tw.Write([]byte(w)); n != len(w) || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
		}
		if got := tw.String(); got != tc.want {
			t.Errorf("%q: String = %q, want %q", tc.writes, got, tc.want)
		}
	}
	// Two writers at once, as a process's stdout and stderr copies are (run with -race).
	tw := &TailWriter{Max: 64}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				_, _ = tw.Write([]byte("0123456789"))
			}
		}()
	}
	wg.Wait()
	if got := tw.String(); len(got) != 64 {
		t.Errorf("String has %d bytes, want 64", len(got))
	}
}
