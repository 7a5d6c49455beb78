package gitsource

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestWildcardMatch(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"github.com", "github.com", true},
		{"*.example.com", "git.example.com", true},
		{"*.example.com", "example.com", false},
		{"git?.example.com", "git1.example.com", true},
		{"git?.example.com", "git.example.com", false},
		{"*", "anything", true},
		{"*", "", true},
		{"", "", true},
		{"", "a", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"*a*a*a*b", "aaaaaaaaaaaaaaaaaaaab", true},
		{"[*]:2222", "[git.example.com]:2222", true},
		{"[*]:2222", "[git.example.com]:22", false},
		{"192.168.1.*", "192.168.1.10", true},
		{"**", "x", true},
		{"*?", "", false},
	}
	for _, tc := range cases {
		if got := wildcardMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("wildcardMatch(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

// TestHostileKnownHostsPatterns matches patterns that make a backtracking matcher take
// exponential time: 9 stars took x/crypto's algorithm 2.85 s, each one more 4-5 times
// as long. Here 60 stars against a 250-byte host finish like any other lookup (the test
// would run into go test's timeout otherwise).
func TestHostileKnownHostsPatterns(t *testing.T) {
	host := strings.Repeat("a", 250)
	pattern := strings.Repeat("*a", 60) + "b"
	if wildcardMatch(pattern, host) {
		t.Fatal("matched")
	}
	line := fmt.Sprintf("%s ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n", pattern)
	k, err := parseKnownHosts([]byte(strings.Repeat(line, 100)))
	if err != nil {
		t.Fatal(err)
	}
	if trusted, _ := k.lookup(host + ":22"); len(trusted) != 0 {
		t.Errorf("trusted %d keys", len(trusted))
	}
}

func TestKnownHostsCaps(t *testing.T) {
	key := " ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
	cases := map[string]string{
		"file too large":    strings.Repeat("#"+strings.Repeat("x", 1000)+"\n", 300),
		"too many entries":  strings.Repeat("h"+key, maxKnownHostsLines+1),
		"too many patterns": strings.Repeat("h,", maxHostPatterns) + "h" + key,
		"pattern too long":  strings.Repeat("h", maxHostPatternLen+1) + key,
	}
	for name, data := range cases {
		if _, err := parseKnownHosts([]byte(data)); !errors.Is(err, ErrInvalidAuth) {
			t.Errorf("%s: %v, want ErrInvalidAuth", name, err)
		}
	}
	if _, err := parseKnownHosts([]byte(strings.Repeat("h,", maxHostPatterns-1) + "h" + key)); err != nil {
		t.Errorf("at the caps: %v", err)
	}
}
