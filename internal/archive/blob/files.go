package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/flow-ci/flow-ci/internal/archive"
)

// files keeps each key as a file under dir, its path the key's.
type files struct {
	dir string
}

// Files keeps blobs as files under dir, which it creates if missing.
func Files(dir string) (Blobs, error) {
	if dir == "" {
		return nil, errors.New("blob directory is empty")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blob directory %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("create blob directory: %w", err)
	}
	return &files{dir: abs}, nil
}

// Put writes a temporary file beside the key's and renames it over the key: the
// rename is atomic, so a reader or a crash sees the old value or the new one. The
// file and its directory are synced before Put returns because the archive saves a
// log's state right after, and the state must never count a chunk a power cut can
// take back.
func (f *files) Put(ctx context.Context, key string, data []byte) error {
	return f.put(ctx, key, func(w *os.File) error {
		_, err := w.Write(data)
		return err
	})
}

// PutStream is Put of what r yields, copied through a 32 KiB buffer. A wrong size
// fails the copy before the rename, so the key keeps its old value; the temporary
// file is removed.
func (f *files) PutStream(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := checkSize(size); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return f.put(ctx, key, func(w *os.File) error {
		// io.Copy ends without an error only at the io.EOF exactReader returns once it
		// has seen r end at size bytes.
		_, err := io.Copy(w, newExactReader(ctx, r, size))
		return err
	})
}

// put writes a temporary file in key's directory with write, syncs it and renames
// it over key.
func (f *files) put(ctx context.Context, key string, write func(*os.File) error) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	path := f.path(key)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	tmp, err := os.CreateTemp(dir, ".put-*")
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := writeSynced(tmp, write); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// writeSynced writes f with write, syncs and closes it.
func writeSynced(f *os.File, write func(*os.File) error) error {
	err := write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (f *files) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r, err := os.Open(f.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", key, archive.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return r, nil
}

// DeletePrefix removes, in the prefix's directory, every entry whose name starts with
// the prefix's last segment: a whole directory when the prefix ends with "/".
func (f *files) DeletePrefix(ctx context.Context, prefix string) error {
	if err := CheckPrefix(prefix); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if strings.HasSuffix(prefix, "/") {
		if err := os.RemoveAll(f.path(prefix)); err != nil {
			return fmt.Errorf("delete %s: %w", prefix, err)
		}
		return nil
	}
	dir, base := filepath.Split(f.path(prefix))
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", prefix, err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), base) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("delete %s: %w", prefix, err)
			}
		}
	}
	return nil
}

// path is where key lives; CheckKey has made sure it stays under f.dir.
func (f *files) path(key string) string {
	return filepath.Join(f.dir, filepath.FromSlash(key))
}
