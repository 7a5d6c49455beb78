// Package mask hides secret values in CI step output by printing "***" in their place,
// as GitHub Actions and Woodpecker do. It is pure: it only transforms bytes.
//
// A secret is masked line by line: a multi-line value (a PEM key) is split into its
// lines and each line is a value of its own, so no value contains '\n'. The stream
// masking in Writer relies on that.
package mask

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"
)

const (
	// MinLen is the shortest value that is masked. Shorter ones ("1", "yes", "dev")
	// would hide ordinary output everywhere while revealing almost nothing, so other CI
	// systems skip them as well.
	MinLen = 4
	// MaxValues bounds the distinct lines to mask, and with them the work per byte of
	// output, which grows with the number of values.
	MaxValues = 1000
	// MaxBytes bounds the total size of the values given to New.
	MaxBytes = 1 << 20
)

// stars replaces each maximal run of covered bytes; its length reveals nothing about
// the length of what it hides.
const stars = "***"

// Masker replaces secret values in text. It is immutable after New, so one Masker may
// be shared by any number of goroutines; each Writer it makes belongs to one.
type Masker struct {
	vals [][]byte
	// first lists vals by their first byte, so that finding where a value may begin
	// looks only at the few values that can start there.
	first  [256][][]byte
	maxLen int
}

// New makes a Masker for values. Each value is masked as each of its lines (split on
// "\n"), without the blanks around it: an unquoted `echo $VAR` prints a value without
// them, and an indented PEM or JSON line is still masked. Lines shorter than MinLen once
// trimmed are dropped, since masking them would hide common words all over the log. It
// fails when the values are more than MaxBytes in all or have more than MaxValues
// distinct lines.
func New(values []string) (*Masker, error) {
	total := 0
	for _, v := range values {
		total += len(v)
	}
	if total > MaxBytes {
		return nil, fmt.Errorf("mask: the secret values are %d bytes in all, more than the limit of %d", total, MaxBytes)
	}
	m := &Masker{}
	seen := make(map[string]bool)
	for _, v := range values {
		for line := range strings.SplitSeq(v, "\n") {
			line = strings.TrimSpace(line)
			if len(line) < MinLen || seen[line] {
				continue
			}
			if len(seen) == MaxValues {
				return nil, fmt.Errorf("mask: the secret values have more than %d distinct lines to mask", MaxValues)
			}
			seen[line] = true
			b := []byte(line)
			m.vals = append(m.vals, b)
			m.first[b[0]] = append(m.first[b[0]], b)
			m.maxLen = max(m.maxLen, len(b))
		}
	}
	return m, nil
}

// Empty reports whether there is nothing to mask (also for a nil Masker).
func (m *Masker) Empty() bool { return m == nil || len(m.vals) == 0 }

// String returns s with every byte that lies in any occurrence of any value (overlapping
// occurrences included) hidden, each maximal run of such bytes replaced by "***".
func (m *Masker) String(s string) string {
	if m.Empty() {
		return s
	}
	out, _, _ := m.appendMasked(nil, []byte(s), len(s), 0, false)
	return string(out)
}

// Bytes is String for a byte slice. It returns a new slice and leaves b unchanged.
func (m *Masker) Bytes(b []byte) []byte {
	if m.Empty() {
		return bytes.Clone(b)
	}
	out, _, _ := m.appendMasked(nil, b, len(b), 0, false)
	return out
}

// span is the half-open byte range [start, end) of src.
type span struct{ start, end int }

// spans returns the maximal runs of covered bytes of src, sorted and disjoint. A byte
// is covered when it lies in an occurrence of a value, or among the first covered bytes
// (an occurrence that began before src). Runs that touch are joined: together they are
// one run of covered bytes.
func (m *Masker) spans(src []byte, covered int) []span {
	var all []span
	if covered > 0 {
		all = append(all, span{0, covered})
	}
	for _, v := range m.vals {
		mine := len(all)
		for i := 0; ; {
			j := bytes.Index(src[i:], v)
			if j < 0 {
				break
			}
			s := span{i + j, i + j + len(v)}
			// One value's occurrences come in order of start and end, so an overlapping
			// one extends the last; a long run of "aaaa…" stays one span.
			if k := len(all) - 1; k >= mine && all[k].end >= s.start {
				all[k].end = s.end
			} else {
				all = append(all, s)
			}
			i = s.start + 1
		}
	}
	slices.SortFunc(all, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	out := all[:0]
	for _, s := range all {
		if k := len(out) - 1; k >= 0 && s.start <= out[k].end {
			out[k].end = max(out[k].end, s.end)
		} else {
			out = append(out, s)
		}
	}
	return out
}

// appendMasked appends src[:n], masked, to dst. Occurrences are searched in all of src,
// so that bytes before n are hidden by occurrences that end after n too; the first
// covered bytes of src are covered by an occurrence that began in earlier output.
// inRun says that the earlier output ends with the "***" of a covered byte: if src
// starts with a covered byte, that run goes on and gets no second "***".
//
// It returns dst, how many bytes of src[n:] are covered by the occurrences that start
// before n (the next call's covered), and whether the output now ends in a run.
func (m *Masker) appendMasked(dst, src []byte, n, covered int, inRun bool) ([]byte, int, bool) {
	if n == 0 {
		return dst, covered, inRun
	}
	pos, end := 0, 0
	for _, s := range m.spans(src, covered) {
		if s.start >= n {
			break
		}
		dst = append(dst, src[pos:s.start]...)
		if s.start > 0 || !inRun {
			dst = append(dst, stars...)
		}
		pos, end = min(s.end, n), s.end
	}
	dst = append(dst, src[pos:n]...)
	return dst, max(end-n, 0), end >= n
}

// holdFrom returns the earliest p such that b[p:] is a proper prefix of some value
// (len(b) when there is none but the empty one). More data may complete an occurrence
// that starts at p or later; none can complete one that starts before p.
//
// Only positions after the last '\n' and within the longest value's length of the end
// can qualify, which is what bounds the bytes a Writer holds.
func (m *Masker) holdFrom(b []byte) int {
	lo := max(0, len(b)-m.maxLen+1)
	if nl := bytes.LastIndexByte(b[lo:], '\n'); nl >= 0 {
		lo += nl + 1
	}
	for p := lo; p < len(b); p++ {
		for _, v := range m.first[b[p]] {
			if len(v) > len(b)-p && bytes.HasPrefix(v, b[p:]) {
				return p
			}
		}
	}
	return len(b)
}
