// Package blob is where the archive keeps its log chunks, artifacts and caches: a flat
// space of keys, each holding one immutable-until-replaced byte string. Files keeps
// them on a local volume (the embedded archive); the S3 implementation keeps them in
// an object store.
package blob

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// Blobs holds byte strings by key. Keys look like "ns/uid/stream/00000001.gz" and use
// only [a-z0-9./_-] (see CheckKey).
type Blobs interface {
	// Put stores data under key, replacing what was there. A reader never sees a
	// partly written value: it sees the old one or the new one.
	Put(ctx context.Context, key string, data []byte) error
	// PutStream stores the size bytes r yields under key, as Put does, holding a
	// bounded part of them in memory whatever size is. When r ends before size bytes
	// or yields more, it fails with archive.ErrWrongSize (wrapped) and key keeps its
	// old value (or stays absent).
	PutStream(ctx context.Context, key string, r io.Reader, size int64) error
	// Get opens the value under key; an absent key is archive.ErrNotFound (wrapped).
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// DeletePrefix removes every key that starts with prefix; none is not an error.
	DeletePrefix(ctx context.Context, prefix string) error
}

// MaxKey bounds a key's length: S3 allows 1024 bytes, and a file path is kept well
// below PATH_MAX with the store's directory in front.
const MaxKey = 512

// CheckKey refuses keys that are not a plain relative path of allowed characters, so
// that no key names a file outside a Files directory or differs between backends:
// empty, longer than MaxKey, a character outside [a-z0-9./_-], a leading or trailing
// "/", an empty segment, "..", or a segment starting with "." (which keeps Files'
// temporary names out of the key space).
func CheckKey(key string) error {
	if strings.HasSuffix(key, "/") {
		return fmt.Errorf("blob key %q ends with /", key)
	}
	return checkPath(key)
}

// CheckPrefix is CheckKey for DeletePrefix, which also takes a prefix ending with "/".
func CheckPrefix(prefix string) error {
	return checkPath(strings.TrimSuffix(prefix, "/"))
}

func checkPath(key string) error {
	if key == "" {
		return fmt.Errorf("blob key is empty")
	}
	if len(key) > MaxKey {
		return fmt.Errorf("blob key is %d bytes long, more than %d", len(key), MaxKey)
	}
	if strings.Contains(key, "..") {
		return fmt.Errorf("blob key %q has \"..\"", key)
	}
	for _, c := range []byte(key) {
		if !allowed(c) {
			return fmt.Errorf("blob key %q has %q, outside [a-z0-9./_-]", key, c)
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return fmt.Errorf("blob key %q is absolute or has an empty segment", key)
		case seg[0] == '.':
			return fmt.Errorf("blob key %q has a segment starting with \".\"", key)
		}
	}
	return nil
}

func allowed(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '/' || c == '_' || c == '-'
}
