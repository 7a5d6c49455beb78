package blob

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/flow-ci/flow-ci/internal/archive"
)

// exactReader yields the bytes of r while they are exactly size: it fails with
// archive.ErrWrongSize when r ends early or holds more. It reads one byte past size
// to know, and does so before it returns the bytes that complete size: a writer that
// reads exactly size bytes and stops (minio-go fills a part's buffer, and drops an
// error that comes with the bytes that fill it) then never holds all size bytes, so it
// cannot complete the object. It is deliberately not an io.ReaderAt or io.WriterTo,
// so that neither minio-go nor io.Copy reads around it.
type exactReader struct {
	ctx  context.Context
	r    io.Reader
	size int64
	n    int64 // the bytes returned so far
	err  error // sticky: io.EOF after the last byte, or the failure
}

func newExactReader(ctx context.Context, r io.Reader, size int64) *exactReader {
	return &exactReader{ctx: ctx, r: r, size: size}
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if err := e.ctx.Err(); err != nil {
		e.err = err
		return 0, err
	}
	left := e.size - e.n
	if left == 0 {
		// Only for size 0: otherwise the read that reached size already looked.
		e.err = e.atEnd()
		return 0, e.err
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	n, err := e.r.Read(p)
	if n == int(left) {
		if end := e.atEnd(); end != io.EOF {
			e.err = end
			return 0, end // withhold the last bytes: see the type's doc
		}
		e.n += int64(n)
		e.err = io.EOF
		return n, nil
	}
	e.n += int64(n)
	switch {
	case errors.Is(err, io.EOF):
		e.err = fmt.Errorf("the body ended after %d of %d bytes: %w", e.n, e.size, archive.ErrWrongSize)
	case err != nil:
		e.err = fmt.Errorf("read the body: %w", err)
	}
	return n, e.err
}

// atEnd is io.EOF when r holds no byte more, else the error to fail with.
func (e *exactReader) atEnd() error {
	var one [1]byte
	for range 100 {
		n, err := e.r.Read(one[:])
		switch {
		case n > 0:
			return fmt.Errorf("the body holds more than %d bytes: %w", e.size, archive.ErrWrongSize)
		case errors.Is(err, io.EOF):
			return io.EOF
		case err != nil:
			return fmt.Errorf("read the body: %w", err)
		}
	}
	return fmt.Errorf("read the body: %w", io.ErrNoProgress)
}

// checkSize refuses a size no store can take.
func checkSize(size int64) error {
	if size < 0 {
		return fmt.Errorf("size %d is negative", size)
	}
	return nil
}
