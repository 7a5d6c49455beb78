package mask

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// stream writes the pieces through a new Writer and returns all that reached the
// underlying writer after Close. It checks the bound on the held bytes after each Write.
func stream(t *testing.T, m *Masker, pieces []string) string {
	t.Helper()
	var out bytes.Buffer
	w := m.Writer(&out)
	for _, p := range pieces {
		if n, err := w.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
		if len(w.held) >= max(m.maxLen, 1) {
			t.Fatalf("after Write(%q): %d bytes held, the longest value is %d", p, len(w.held), m.maxLen)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func bytewise(s string) []string {
	pieces := make([]string, len(s))
	for i := range s {
		pieces[i] = s[i : i+1]
	}
	return pieces
}

func TestWriter(t *testing.T) {
	pem := "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34\n-----END KEY-----\n"
	for _, tc := range []struct {
		name   string
		values []string
		in     string
		want   string
	}{
		{"no values", nil, "token-value\n", "token-value\n"},
		{"one", []string{"token-value"}, "got token-value.\n", "got ***.\n"},
		{"at the end without newline", []string{"token-value"}, "x token-value", "x ***"},
		{"prompt", []string{"token-value"}, "Password: ", "Password: "},
		{"unfinished prefix", []string{"token-value"}, "tok\ntoken-valu", "tok\ntoken-valu"},
		{"multi-line value", []string{pem}, "key:\n" + pem + "done\n", "key:\n***\n***\n***\ndone\n"},
		{"short not masked", []string{"abc"}, "abc abc\n", "abc abc\n"},
		{"overlapping values", []string{"abcd", "cdef"}, "xabcdefx\n", "x***x\n"},
		{"overlapping occurrences of one value", []string{"aaaa"}, "aaaaaaaaaa baaa\n", "*** baaa\n"},
		{"adjacent occurrences are one run", []string{"abcd"}, "abcdabcdabcd\n", "***\n"},
		{"prefix value", []string{"abcd", "abcdefgh"}, "abcdefgh", "***"},
		{"prefix value not completed", []string{"abcd", "abcdefgh"}, "abcdefgX", "***efgX"},
		{"value inside another", []string{"abcdefgh", "cdef"}, "abcdefgh cdef", "*** ***"},
		{"crlf", []string{"abcd\r\n"}, "see abcd\r\nabcd\r\n", "see ***\r\n***\r\n"},
		{"occurrence reaching into held bytes", []string{"00\x010"}, "00\x0100", "***0"},
		{"newline ends a prefix", []string{"token-value"}, "token\n-value\n", "token\n-value\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(tc.values)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.String(tc.in); got != tc.want {
				t.Fatalf("String = %q, want %q", got, tc.want)
			}
			if got := stream(t, m, []string{tc.in}); got != tc.want {
				t.Errorf("one write: %q, want %q", got, tc.want)
			}
			for i := range len(tc.in) + 1 {
				if got := stream(t, m, []string{tc.in[:i], tc.in[i:]}); got != tc.want {
					t.Errorf("split at %d: %q, want %q", i, got, tc.want)
				}
			}
			if got := stream(t, m, bytewise(tc.in)); got != tc.want {
				t.Errorf("byte by byte: %q, want %q", got, tc.want)
			}
		})
	}
}

// TestWriterLatency checks what the underlying writer has received after each Write,
// before Close: output is held back only while it may be the start of a secret.
func TestWriterLatency(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []string
		writes []string
		after  []string // all received after each write
	}{
		{"prompt", []string{"token-value"}, []string{"Password: "}, []string{"Password: "}},
		{"prompt ending in a secret's start", []string{"token-value"}, []string{"x tok", "en-value", " y"}, []string{"x ", "x ***", "x *** y"}},
		{"prefix not completed", []string{"token-value"}, []string{"tok", "e!"}, []string{"", "toke!"}},
		{"prefix value", []string{"abcd", "abcdefgh"}, []string{"abcd", "efgh"}, []string{"", "***"}},
		{"run over writes", []string{"abcd"}, []string{"abcd", "abcd", "\n"}, []string{"***", "***", "***\n"}},
		{"lines", []string{"token-value"}, []string{"a\nb\ntok", "en-value\n"}, []string{"a\nb\n", "a\nb\n***\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(tc.values)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			w := m.Writer(&out)
			for i, p := range tc.writes {
				if _, err := w.Write([]byte(p)); err != nil {
					t.Fatal(err)
				}
				if out.String() != tc.after[i] {
					t.Fatalf("after Write(%q): received %q, want %q", p, out.String(), tc.after[i])
				}
			}
			want := m.String(strings.Join(tc.writes, ""))
			if err := w.Close(); err != nil || out.String() != want {
				t.Errorf("after Close: received %q (err %v), want %q", out.String(), err, want)
			}
		})
	}
}

// TestWriterBounded streams long lines without a newline, including an endless run of
// overlapping occurrences, and checks (in stream) that the held bytes stay below the
// longest value.
func TestWriterBounded(t *testing.T) {
	m, err := New([]string{"aaaa", "abcdefgh"})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{
		strings.Repeat("a", 5000),
		strings.Repeat("abcdefg", 700),
		strings.Repeat("x", 5000),
		strings.Repeat("abcdefgh", 700),
	} {
		for _, size := range []int{1, 3, 100, 4096} {
			var pieces []string
			for s := in; len(s) > 0; s = s[min(size, len(s)):] {
				pieces = append(pieces, s[:min(size, len(s))])
			}
			if got, want := stream(t, m, pieces), m.String(in); got != want {
				t.Errorf("%.10q… in writes of %d: %.20q…, want %.20q…", in, size, got, want)
			}
		}
	}
}

type failWriter struct{ closed bool }

func (f *failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
func (f *failWriter) Close() error              { f.closed = true; return nil }

type closeRecorder struct {
	bytes.Buffer
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func TestWriterErrors(t *testing.T) {
	m, err := New([]string{"token-value"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		m    *Masker
	}{{"masking", m}, {"passing through", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			f := &failWriter{}
			w := tc.m.Writer(f)
			if _, err := w.Write([]byte("line\n")); err == nil {
				t.Error("Write: no error from a failing writer")
			}
			if _, err := w.Write([]byte("line\n")); err == nil {
				t.Error("second Write: the first error was forgotten")
			}
			if err := w.Close(); err == nil || f.closed {
				t.Errorf("Close = %v, underlying closed %v: want the error and not closed", err, f.closed)
			}

			c := &closeRecorder{}
			w = tc.m.Writer(c)
			if _, err := w.Write([]byte("tok")); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil || c.closed || c.String() != "tok" {
				t.Errorf("Close = %v, underlying closed %v, got %q", err, c.closed, c.String())
			}
			if err := w.Close(); err != nil {
				t.Errorf("second Close = %v", err)
			}
			if _, err := w.Write([]byte("x")); err == nil {
				t.Error("Write after Close: no error")
			}
		})
	}
}

// reference masks s by brute force: mark every byte in an occurrence, then print each
// run of marked bytes as "***".
func reference(vals [][]byte, s []byte) string {
	hidden := make([]bool, len(s))
	for i := range s {
		for _, v := range vals {
			if bytes.HasPrefix(s[i:], v) {
				for k := range v {
					hidden[i+k] = true
				}
			}
		}
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if !hidden[i] {
			b.WriteByte(s[i])
			continue
		}
		b.WriteString(stars)
		for i+1 < len(s) && hidden[i+1] {
			i++
		}
	}
	return b.String()
}

// FuzzWriter: for values (separated by ','), a stream, and a split of the stream into
// writes (cuts gives the lengths, 0 to 7, cycled), the Writer's output equals String of
// the whole stream, which equals the brute-force reference. When no value contains '*'
// (stars could combine with shown bytes into one), no value appears in the output.
func FuzzWriter(f *testing.F) {
	f.Add("abcd,cdef", []byte("xxabcdefyy\nabcd\nab"), []byte{1, 2, 3})
	f.Add("abcd,abcdefgh", []byte("abcdefgh abcdefg abcdabcd"), []byte{4, 4, 0, 1})
	f.Add("aaaa,aab\naaac", []byte("aaaaaaaab\naaac\r\naaaa"), []byte{1})
	f.Add("00\x010", []byte("00\x0100"), []byte{1})
	f.Add("token-value", []byte("Password: tok\nen-value token-value"), []byte{7, 5, 2})
	f.Fuzz(func(t *testing.T, values string, in, cuts []byte) {
		m, err := New(strings.Split(values, ","))
		if err != nil {
			t.Skip()
		}
		want := m.String(string(in))
		if ref := reference(m.vals, in); want != ref {
			t.Fatalf("String(%q) = %q, reference %q", in, want, ref)
		}
		var pieces []string
		for i, rest := 0, string(in); len(rest) > 0; i++ {
			n := len(rest)
			if len(cuts) > 0 && i < len(in)+len(cuts) { // cuts of only 0 still end
				n = min(int(cuts[i%len(cuts)]%8), len(rest))
			}
			pieces, rest = append(pieces, rest[:n]), rest[n:]
		}
		got := stream(t, m, pieces)
		if got != want {
			t.Fatalf("written in %q: %q, want %q", pieces, got, want)
		}
		if strings.Contains(values, "*") {
			return
		}
		for _, v := range m.vals {
			if strings.Contains(got, string(v)) {
				t.Fatalf("output %q contains value %q", got, v)
			}
		}
	})
}
