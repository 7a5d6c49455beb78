package gitsource

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/storage"
)

// ErrTooLarge: the server sent more than the call's budget allows.
var ErrTooLarge = errors.New("server response exceeds the read budget")

// Budget bounds what one call takes from a git server, so that no repository, and no
// hostile server, can make the operator use unbounded memory or disk.
type Budget struct {
	// Bytes bounds everything read from the network in one call: ref advertisements,
	// packs and error bodies, over every connection of the call.
	Bytes int64
	// Pack bounds the bytes of one pack (compressed, as sent).
	Pack int64
	// Inflated bounds the sum of the objects' sizes in one pack, read from their headers
	// before any object is inflated: a compressed pack cannot expand past it.
	Inflated int64
}

// Default budgets. ResolveCommit reads only the ref advertisement; ReadFile a commit's
// trees and one blob (or, from a server that cannot filter, the commit's files); Clone
// a whole commit, spilled to disk.
var (
	resolveBudget = Budget{Bytes: 8 << 20}
	readBudget    = Budget{Bytes: 32 << 20, Pack: 16 << 20, Inflated: 16 << 20}
	cloneBudget   = Budget{Bytes: 1 << 30, Pack: 1 << 30, Inflated: 4 << 30}
)

// maxErrorBody is how much of a non-2xx HTTP body is read, and then thrown away: a
// server's error text never reaches a message (it may echo credentials or come from an
// internal service), only its status code.
const maxErrorBody = 64 << 10

// meter counts the bytes a call reads over all its connections.
type meter struct {
	limit int64
	read  atomic.Int64
	over  atomic.Bool
}

func (m *meter) add(n int) error {
	if m.read.Add(int64(n)) > m.limit {
		m.over.Store(true)
		return fmt.Errorf("%w: read more than %d bytes", ErrTooLarge, m.limit)
	}
	return nil
}

// meteredConn fails reads once the call's meter is past its limit.
type meteredConn struct {
	net.Conn
	m *meter
}

func (c meteredConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if merr := c.m.add(n); merr != nil {
		return n, merr
	}
	return n, err
}

// sameOrigin allows a redirect only to the scheme, host and port of the first request
// (GitLab, for one, redirects repo to repo.git); anywhere else is refused, so an
// allowed host cannot send the operator to an internal one.
func sameOrigin(req *http.Request, via []*http.Request) error {
	first := via[0].URL
	if len(via) > 3 || req.URL.Scheme != first.Scheme || req.URL.Host != first.Host {
		return fmt.Errorf("%w: redirect from %s to another origin refused", ErrAddressNotAllowed, first.Host)
	}
	return nil
}

// storePack reads a pack into st within b: at most b.Pack bytes of it are read (into
// memory, or into a temporary file in spillDir when it is not empty), its object headers
// are checked against b.Inflated before anything is inflated, and only then is it
// stored.
func storePack(st storage.Storer, r io.Reader, b Budget, spillDir string) error {
	var pack io.ReadSeeker
	lr := &io.LimitedReader{R: r, N: b.Pack + 1}
	if spillDir == "" {
		buf, err := io.ReadAll(lr)
		if err != nil {
			return err
		}
		pack = bytes.NewReader(buf)
	} else {
		f, err := os.CreateTemp(spillDir, "incoming-*.pack")
		if err != nil {
			return fmt.Errorf("spill the pack: %w", err)
		}
		defer func() { _ = f.Close(); _ = os.Remove(f.Name()) }()
		if _, err := io.Copy(f, lr); err != nil {
			return err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		pack = f
	}
	if lr.N <= 0 {
		return fmt.Errorf("%w: the pack is larger than %d bytes", ErrTooLarge, b.Pack)
	}
	if err := checkInflated(pack, b.Inflated); err != nil {
		return err
	}
	if _, err := pack.Seek(0, io.SeekStart); err != nil {
		return err
	}
	return packfile.UpdateObjectStorage(st, pack)
}

// checkInflated adds up the sizes of a pack's objects from their headers, and a delta's
// from the target size at the start of its instructions, and fails as soon as the sum
// passes limit: nothing larger than the limit is ever inflated.
func checkInflated(pack io.ReadSeeker, limit int64) error {
	s := packfile.NewScanner(pack)
	_, count, err := s.Header()
	if err != nil {
		return fmt.Errorf("read pack header: %w", err)
	}
	var total int64
	for range count {
		oh, err := s.NextObjectHeader()
		if err != nil {
			return fmt.Errorf("read pack object header: %w", err)
		}
		size := oh.Length
		if oh.Type == plumbing.OFSDeltaObject || oh.Type == plumbing.REFDeltaObject {
			if total+oh.Length > limit {
				return fmt.Errorf("%w: the pack's objects are larger than %d bytes", ErrTooLarge, limit)
			}
			head := &prefixWriter{max: 2 * 10}
			if _, _, err := s.NextObject(head); err != nil {
				return fmt.Errorf("read pack delta: %w", err)
			}
			if size, err = deltaTargetSize(head.buf); err != nil {
				return err
			}
		}
		if total += size; total > limit {
			return fmt.Errorf("%w: the pack's objects are larger than %d bytes", ErrTooLarge, limit)
		}
	}
	return nil
}

// prefixWriter keeps the first max bytes written to it and discards the rest.
type prefixWriter struct {
	buf []byte
	max int
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	if room := w.max - len(w.buf); room > 0 {
		w.buf = append(w.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// deltaTargetSize reads the size of the object a delta produces: the second of the two
// little-endian base-128 numbers that start git's delta format.
func deltaTargetSize(d []byte) (int64, error) {
	var sizes [2]int64
	for i := range sizes {
		var v int64
		for shift := uint(0); ; shift += 7 {
			if len(d) == 0 || shift > 56 {
				return 0, errors.New("malformed pack delta header")
			}
			c := d[0]
			d = d[1:]
			v |= int64(c&0x7f) << shift
			if c&0x80 == 0 {
				break
			}
		}
		sizes[i] = v
	}
	return sizes[1], nil
}
