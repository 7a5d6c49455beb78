// Package shorten cuts strings for humans and for bounded fields: a commit id to its
// short form, and text to a byte limit without splitting a UTF-8 sequence, keeping its
// head (a message) or its tail (a log, whose end says what went wrong). It is pure.
package shorten

import (
	"strings"
	"unicode/utf8"
)

// SHA is the first 7 characters of a commit id, as git shows it.
func SHA(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// Head is s cut to at most n bytes on a rune boundary. Invalid UTF-8 is replaced with
// U+FFFD first, so the result is valid UTF-8 and the cut lands on a real boundary.
func Head(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:max(n, 0)]
}

// Tail keeps the last n bytes of s, marked with a leading ellipsis (counted in n),
// without splitting a UTF-8 sequence.
func Tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := len(s) - n + len("…")
	for cut < len(s) && (s[cut]&0xC0) == 0x80 {
		cut++
	}
	return "…" + s[min(cut, len(s)):]
}
