package sqlstore

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/flow-ci/flow-ci/internal/archive"
)

// logReader streams a log's chunks 0..state.Chunks-1, decompressed, holding one chunk's
// reader at a time so that a log of any size is read in constant memory.
type logReader struct {
	ctx             context.Context
	s               *store
	ns, uid, stream string
	state           archive.LogState
	next            int   // the index of the chunk to open after the current one
	read            int64 // the bytes returned so far
	zr              *gzip.Reader
	body            io.ReadCloser // the current chunk, compressed; nil between chunks
	err             error         // sticky: once a read fails, every later one does
}

func (r *logReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil // readChunks would wait forever for a read that returns bytes
	}
	n, err := r.readChunks(p)
	r.read += int64(n)
	if err != nil {
		r.err = err
	}
	if r.read > r.state.Bytes {
		r.err = fmt.Errorf("log %s/%s: chunks hold more than the %d bytes its state counts",
			r.uid, r.stream, r.state.Bytes)
		return n, r.err
	}
	return n, err
}

// readChunks reads from the current chunk, moving to the next at its end, until it
// returns some bytes, fails, or the last chunk ends (io.EOF).
func (r *logReader) readChunks(p []byte) (int, error) {
	for {
		if r.body == nil {
			if r.next == r.state.Chunks {
				if r.read != r.state.Bytes {
					return 0, fmt.Errorf("log %s/%s: chunks hold %d bytes, its state counts %d",
						r.uid, r.stream, r.read, r.state.Bytes)
				}
				return 0, io.EOF
			}
			if err := r.open(); err != nil {
				return 0, err
			}
		}
		n, err := r.zr.Read(p)
		if errors.Is(err, io.EOF) {
			if cerr := r.closeChunk(); cerr != nil {
				return n, cerr
			}
			err = nil
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
}

// open starts reading chunk r.next.
func (r *logReader) open() error {
	key := chunkKey(r.ns, r.uid, r.stream, r.next)
	body, err := r.s.blobs.Get(r.ctx, key)
	if errors.Is(err, archive.ErrNotFound) {
		// Not ErrNotFound to the caller: the log exists, and a part of it is lost.
		return fmt.Errorf("log %s/%s: chunk %d is missing from the blob store", r.uid, r.stream, r.next)
	}
	if err != nil {
		return fmt.Errorf("log %s/%s: chunk %d: %w", r.uid, r.stream, r.next, err)
	}
	if r.zr == nil {
		r.zr, err = gzip.NewReader(body)
	} else {
		err = r.zr.Reset(body)
	}
	if err != nil {
		_ = body.Close()
		return fmt.Errorf("log %s/%s: chunk %d: %w", r.uid, r.stream, r.next, err)
	}
	r.body = body
	r.next++
	return nil
}

func (r *logReader) closeChunk() error {
	if r.body == nil {
		return nil
	}
	err := r.zr.Close()
	if berr := r.body.Close(); err == nil {
		err = berr
	}
	r.body = nil
	return err
}

func (r *logReader) Close() error {
	if r.err == nil {
		r.err = errors.New("read of a closed log")
	}
	return r.closeChunk()
}
