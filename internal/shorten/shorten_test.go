package shorten

import (
	"testing"
	"unicode/utf8"
)

func TestSHA(t *testing.T) {
	for in, want := range map[string]string{"0123456789abcdef": "0123456", "abc": "abc", "": ""} {
		if got := SHA(in); got != want {
			t.Errorf("SHA(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHead(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 3, "hel"},
		{"héllo", 2, "h"}, // é is two bytes: not split
		{"日本語", 4, "日"},
		{"a\xffb", 10, "a\uFFFDb"},
		{"abc", 0, ""},
	} {
		got := Head(tc.in, tc.n)
		if got != tc.want || !utf8.ValidString(got) || len(got) > max(tc.n, len(tc.want)) {
			t.Errorf("Head(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestTail(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"0123456789", 6, "…789"},
		{"aé日本", 7, "…本"}, // "…" is 3 bytes; the cut moves past a continuation byte
	} {
		got := Tail(tc.in, tc.n)
		if got != tc.want || !utf8.ValidString(got) || len(got) > tc.n {
			t.Errorf("Tail(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
