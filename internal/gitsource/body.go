package gitsource

import (
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/protocol/packp"

	"github.com/flow-ci/flow-ci/internal/shorten"
)

// Bounds of a ref advertisement, checked as its lines arrive over HTTP and on the
// parsed advertisement for every transport. A real repository's branch and tag names
// are far shorter than a line, and a budget of 8 MiB holds about 100,000 short refs.
const (
	// maxRefs is the most refs (and peeled tags) one advertisement may list.
	maxRefs = 100_000
	// maxRefLine is the most bytes of one advertisement line: a hash, a name and, on
	// the first line only, the capabilities.
	maxRefLine = 4 << 10
)

// guardTransport sits between go-git and the network for every HTTP request of a call.
// It strips and records a non-2xx answer; it decodes a body the server compressed,
// although the transport never asks for it (DisableCompression), and counts the
// decoded bytes against the call's budget; and it bounds the lines of a ref
// advertisement as they arrive. Go's own transparent gzip would inflate a small
// response into any size before the metered connection could see it.
type guardTransport struct {
	next   http.RoundTripper
	record func(func(*callState))
	body   *meter
}

func (t guardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if resp.StatusCode >= 300 {
		t.record(func(s *callState) { s.httpStatus = resp.StatusCode })
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		_ = resp.Body.Close()
		resp.Body = http.NoBody
		resp.ContentLength = 0
		return resp, nil
	}
	decoded, err := decodedBody(resp)
	if err != nil {
		_ = resp.Body.Close()
		return nil, err
	}
	var r io.Reader = &meteredReader{r: decoded, m: t.body}
	if strings.HasSuffix(req.URL.Path, "/info/refs") {
		r = &refLimiter{r: r, fail: func(err error) { t.record(func(s *callState) { s.tooLarge = err }) }}
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{r, resp.Body}
	resp.Header.Del("Content-Encoding")
	resp.ContentLength = -1
	resp.Uncompressed = true
	return resp, nil
}

// decodedBody is the response body with its content encoding undone: identity, gzip or
// deflate, decoded lazily so that a malformed header fails the first read. Any other
// encoding, or more than one, is refused.
func decodedBody(resp *http.Response) (io.Reader, error) {
	body := resp.Body // the caller replaces resp.Body with what this returns
	switch enc := strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		return body, nil
	case "gzip", "x-gzip":
		return &lazyReader{open: func() (io.Reader, error) { return gzip.NewReader(body) }}, nil
	case "deflate":
		return &lazyReader{open: func() (io.Reader, error) { return zlib.NewReader(body) }}, nil
	default:
		return nil, fmt.Errorf("the server sent a body in content encoding %q, which this client does not read", shorten.Head(enc, 32))
	}
}

// lazyReader opens its reader on the first Read.
type lazyReader struct {
	open func() (io.Reader, error)
	r    io.Reader
	err  error
}

func (l *lazyReader) Read(p []byte) (int, error) {
	if l.r == nil && l.err == nil {
		l.r, l.err = l.open()
	}
	if l.err != nil {
		return 0, l.err
	}
	return l.r.Read(p)
}

// meteredReader counts the bytes read through it against a meter.
type meteredReader struct {
	r io.Reader
	m *meter
}

func (m *meteredReader) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if merr := m.m.add(n); merr != nil {
		return n, merr
	}
	return n, err
}

// refLimiter follows the pkt-lines of a smart-HTTP ref advertisement as they pass and
// fails the read when a line is longer than maxRefLine or there are more than maxRefs
// lines: a hostile server cannot make the decoder hold more refs than that.
type refLimiter struct {
	r    io.Reader
	fail func(error)

	head  [4]byte // the length prefix being read
	nhead int
	left  int // bytes of the current line's payload still to pass
	lines int
	err   error
}

func (l *refLimiter) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.r.Read(p)
	if lerr := l.scan(p[:n]); lerr != nil {
		l.err = lerr
		l.fail(lerr)
		return n, lerr
	}
	return n, err
}

// scan advances the pkt-line state over b.
func (l *refLimiter) scan(b []byte) error {
	for len(b) > 0 {
		if l.left > 0 {
			step := min(l.left, len(b))
			l.left -= step
			b = b[step:]
			continue
		}
		step := min(4-l.nhead, len(b))
		copy(l.head[l.nhead:], b[:step])
		l.nhead += step
		b = b[step:]
		if l.nhead < 4 {
			return nil
		}
		l.nhead = 0
		n, err := strconv.ParseUint(string(l.head[:]), 16, 16)
		if err != nil {
			return nil // not a pkt-line: go-git's decoder reports it
		}
		size := int(n)
		if size <= 4 {
			continue // flush, delimiter or an empty line
		}
		if size-4 > maxRefLine {
			return fmt.Errorf("%w: a line of the ref advertisement is %d bytes, more than %d", ErrTooLarge, size-4, maxRefLine)
		}
		if l.lines++; l.lines > maxRefs+1 { // +1: the "# service=" line
			return fmt.Errorf("%w: the ref advertisement lists more than %d refs", ErrTooLarge, maxRefs)
		}
		l.left = size - 4
	}
	return nil
}

// checkAdvertised bounds a parsed advertisement for transports whose lines are not seen
// as they arrive (ssh, where the byte budget bounds the whole).
func checkAdvertised(ar *packp.AdvRefs) error {
	if n := len(ar.References) + len(ar.Peeled); n > maxRefs {
		return fmt.Errorf("%w: the ref advertisement lists %d refs, more than %d", ErrTooLarge, n, maxRefs)
	}
	for name := range ar.References {
		if len(name) > maxRefLine {
			return fmt.Errorf("%w: a ref name is %d bytes, more than %d", ErrTooLarge, len(name), maxRefLine)
		}
	}
	return nil
}
