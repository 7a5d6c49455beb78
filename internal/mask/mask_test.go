package mask

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func lines(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "secret-%04d\n", i)
	}
	return b.String()
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name    string
		values  []string
		want    []string
		wantErr string
	}{
		{name: "none", values: nil, want: nil},
		{name: "one", values: []string{"token-value"}, want: []string{"token-value"}},
		{name: "lines", values: []string{"line-one\nline-two\n"}, want: []string{"line-one", "line-two"}},
		{name: "crlf", values: []string{"line-one\r\nline-two\r\n"}, want: []string{"line-one", "line-two"}},
		{name: "inner cr kept", values: []string{"ab\rcd"}, want: []string{"ab\rcd"}},
		{name: "blanks around trimmed", values: []string{"  tok3n-value\t", "\t  indented-pem-line  \n"}, want: []string{"tok3n-value", "indented-pem-line"}},
		{name: "short once trimmed dropped", values: []string{"  ab  ", " }, "}, want: nil},
		{name: "short and blank dropped", values: []string{"abc", "", "    ", "\t\t\t\t", "abcd"}, want: []string{"abcd"}},
		{name: "duplicates", values: []string{"abcd", "abcd\nabcd", "efgh\nabcd"}, want: []string{"abcd", "efgh"}},
		{name: "max bytes", values: []string{strings.Repeat("a", MaxBytes)}, want: []string{strings.Repeat("a", MaxBytes)}},
		{name: "over max bytes", values: []string{strings.Repeat("a", MaxBytes/2), strings.Repeat("b", MaxBytes/2+1)}, wantErr: "more than the limit of 1048576"},
		{name: "max values", values: []string{lines(MaxValues)}},
		{name: "over max values", values: []string{lines(MaxValues - 1), "one-more\nsecret-0001\nand-another"}, wantErr: "more than 1000 distinct lines"},
		{name: "duplicates do not count", values: slices.Repeat([]string{"same-value"}, 2*MaxValues), want: []string{"same-value"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(tc.values)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New: err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if tc.name == "max values" {
				if len(m.vals) != MaxValues {
					t.Fatalf("%d values, want %d", len(m.vals), MaxValues)
				}
				return
			}
			var got []string
			for _, v := range m.vals {
				got = append(got, string(v))
			}
			if !slices.Equal(got, tc.want) || m.Empty() != (len(tc.want) == 0) {
				t.Errorf("values %q (Empty %v), want %q", got, m.Empty(), tc.want)
			}
		})
	}
}

func TestString(t *testing.T) {
	pem := "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34\n-----END KEY-----\n"
	for _, tc := range []struct {
		name   string
		values []string
		in     string
		want   string
	}{
		{"no values", nil, "token-value", "token-value"},
		{"one", []string{"token-value"}, "got token-value.", "got ***."},
		{"every occurrence", []string{"token-value"}, "token-value token-value\ntoken-value", "*** ***\n***"},
		{"adjacent occurrences are one run", []string{"abcd"}, "abcdabcd!", "***!"},
		{"overlapping values", []string{"abcd", "cdef"}, "xabcdefx", "x***x"},
		{"overlapping occurrences of one value", []string{"aaaa"}, "aaaaaaa b aaa", "*** b aaa"},
		{"value inside another", []string{"abcdefgh", "cdef"}, "abcdefgh cdef", "*** ***"},
		{"prefix value", []string{"abcd", "abcdefgh"}, "abcdefgh abcdefg", "*** ***efg"},
		{"short not masked", []string{"abc"}, "abc abc", "abc abc"},
		{"multi-line value", []string{pem}, "key:\n" + pem + "echo MIIBOgIBAAJBAKj34", "key:\n***\n***\n***\necho ***"},
		{"crlf value", []string{"abcd\r\n"}, "see abcd\r\nabcd\r\n", "see ***\r\n***\r\n"},
		{"utf-8", []string{"pässwörd"}, "ä pässwörd ö", "ä *** ö"},
		{"empty input", []string{"abcd"}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(tc.values)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.String(tc.in); got != tc.want {
				t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
			}
			in := []byte(tc.in)
			if got := m.Bytes(in); string(got) != tc.want || string(in) != tc.in {
				t.Errorf("Bytes(%q) = %q (input now %q), want %q", tc.in, got, in, tc.want)
			}
		})
	}
}

func TestNilMasker(t *testing.T) {
	var m *Masker
	if !m.Empty() || m.String("abcd") != "abcd" || string(m.Bytes([]byte("abcd"))) != "abcd" {
		t.Error("a nil Masker must mask nothing")
	}
}
