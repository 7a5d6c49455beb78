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

// x/crypto's knownhosts only reads files; the Secret gives bytes, and a temp
// file per call would need a writable filesystem. So we parse lines with
// ssh.ParseKnownHosts and match hosts (plain, wildcard, negated, hashed) here.

type knownHost struct {
	patterns []string
	key      ssh.PublicKey
	revoked  bool
}

type knownHosts []knownHost

func parseKnownHosts(data []byte) (knownHosts, error) {
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
// including '[' in "[host]:port", are literal.
func wildcardMatch(pattern, s string) bool {
	for len(pattern) > 0 {
		switch pattern[0] {
		case '*':
			for i := len(s); i >= 0; i-- {
				if wildcardMatch(pattern[1:], s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
		default:
			if s == "" || s[0] != pattern[0] {
				return false
			}
		}
		pattern, s = pattern[1:], s[1:]
	}
	return s == ""
}
