package gitsource

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Parsing is x/crypto's (ssh.ParseKnownHosts, knownhosts.Normalize); host
// matching is ours. x/crypto's matcher, which Flux's bytes-based knownhosts
// copies, backtracks recursively on '*': a hostile Secret with a dozen of them
// holds a reconcile worker for minutes. matchGlob below never backtracks, and
// the caps bound the work of a lookup by the size of the Secret.

// Caps on a known_hosts Secret. Real files have a few lines per host.
const (
	maxKnownHostsBytes = 256 << 10
	maxKnownHostsLines = 4096
	maxHostPatterns    = 64
	maxHostPatternLen  = 512
)

type knownHost struct {
	patterns []string
	key      ssh.PublicKey
	revoked  bool
}

type knownHosts []knownHost

func parseKnownHosts(data []byte) (knownHosts, error) {
	if len(data) > maxKnownHostsBytes {
		return nil, fmt.Errorf("%w: %s is %d bytes, more than %d", ErrInvalidAuth, KeyKnownHosts, len(data), maxKnownHostsBytes)
	}
	var out knownHosts
	for rest := data; ; {
		marker, hosts, key, _, next, err := ssh.ParseKnownHosts(rest)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalidAuth, KeyKnownHosts, err)
		}
		rest = next
		if len(out) >= maxKnownHostsLines {
			return nil, fmt.Errorf("%w: %s has more than %d entries", ErrInvalidAuth, KeyKnownHosts, maxKnownHostsLines)
		}
		if len(hosts) > maxHostPatterns {
			return nil, fmt.Errorf("%w: %s has an entry with more than %d host patterns", ErrInvalidAuth, KeyKnownHosts, maxHostPatterns)
		}
		for _, h := range hosts {
			if len(h) > maxHostPatternLen {
				return nil, fmt.Errorf("%w: %s has a host pattern longer than %d bytes", ErrInvalidAuth, KeyKnownHosts, maxHostPatternLen)
			}
		}
		switch marker {
		case "":
			out = append(out, knownHost{patterns: hosts, key: key})
		case "revoked":
			out = append(out, knownHost{patterns: hosts, key: key, revoked: true})
		default:
			// @cert-authority: host certificates are not supported; such a
			// host fails as "no entry" rather than being trusted.
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s has no host keys", ErrInvalidAuth, KeyKnownHosts)
	}
	return out, nil
}

// lookup returns the trusted and revoked keys for hostport.
func (k knownHosts) lookup(hostport string) (trusted, revoked []ssh.PublicKey) {
	addr := strings.ToLower(knownhosts.Normalize(hostport))
	for _, h := range k {
		if !h.matches(addr) {
			continue
		}
		if h.revoked {
			revoked = append(revoked, h.key)
		} else {
			trusted = append(trusted, h.key)
		}
	}
	return trusted, revoked
}

// callback verifies the key the server presents for hostport.
func (k knownHosts) callback(hostport string) func(ssh.PublicKey) error {
	trusted, revoked := k.lookup(hostport)
	return func(key ssh.PublicKey) error {
		for _, r := range revoked {
			if keysEqual(r, key) {
				return fmt.Errorf("host key for %s is marked @revoked in %s", hostport, KeyKnownHosts)
			}
		}
		if len(trusted) == 0 {
			return fmt.Errorf("%s has no entry in %s", hostport, KeyKnownHosts)
		}
		for _, t := range trusted {
			if keysEqual(t, key) {
				return nil
			}
		}
		return fmt.Errorf("host key for %s does not match %s (server offered %s %s)",
			hostport, KeyKnownHosts, key.Type(), ssh.FingerprintSHA256(key))
	}
}

// algorithms lists the host key algorithms to negotiate, so a server with
// several host keys presents one of the kinds we can verify.
func (k knownHosts) algorithms(hostport string) []string {
	trusted, _ := k.lookup(hostport)
	var algos []string
	seen := map[string]bool{}
	for _, key := range trusted {
		names := []string{key.Type()}
		if key.Type() == ssh.KeyAlgoRSA {
			names = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
		}
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				algos = append(algos, n)
			}
		}
	}
	return algos
}

func keysEqual(a, b ssh.PublicKey) bool { return bytes.Equal(a.Marshal(), b.Marshal()) }

// matches applies OpenSSH's host list rules: any negated match excludes the
// line, otherwise one positive match is enough.
func (h knownHost) matches(addr string) bool {
	matched := false
	for _, p := range h.patterns {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		if patternMatches(p, addr) {
			if neg {
				return false
			}
			matched = true
		}
	}
	return matched
}

func patternMatches(pattern, addr string) bool {
	if rest, ok := strings.CutPrefix(pattern, "|1|"); ok {
		salt64, hash64, ok := strings.Cut(rest, "|")
		if !ok {
			return false
		}
		salt, err1 := base64.StdEncoding.DecodeString(salt64)
		want, err2 := base64.StdEncoding.DecodeString(hash64)
		if err1 != nil || err2 != nil {
			return false
		}
		mac := hmac.New(sha1.New, salt)
		mac.Write([]byte(addr))
		return hmac.Equal(mac.Sum(nil), want)
	}
	return wildcardMatch(strings.ToLower(pattern), addr)
}

// wildcardMatch matches '*' (any run) and '?' (one byte); other bytes,
// including '[' in "[host]:port", are literal. It never backtracks further
// than the last '*', so it takes at most len(pattern)*len(s) steps.
func wildcardMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case star >= 0:
			// Let the last '*' take one more byte and retry after it.
			mark++
			p, i = star+1, mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
