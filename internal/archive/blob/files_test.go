package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flow-ci/flow-ci/internal/archive"
)

func TestCheckKey(t *testing.T) {
	for _, tc := range []struct {
		key       string
		keyOK     bool
		prefixOK  bool
		wantInErr string
	}{
		{key: "ns/uid/clone/00000000.gz", keyOK: true, prefixOK: true},
		{key: "a", keyOK: true, prefixOK: true},
		{key: "a_b-c.d/e", keyOK: true, prefixOK: true},
		{key: "ns/uid/", prefixOK: true, wantInErr: "ends with /"},
		{key: "", wantInErr: "empty"},
		{key: "/etc/passwd", wantInErr: "absolute"},
		{key: "ns//uid", wantInErr: "empty segment"},
		{key: "../x", wantInErr: `".."`},
		{key: "ns/../x", wantInErr: `".."`},
		{key: "ns/a..b", wantInErr: `".."`},
		{key: "ns/./x", wantInErr: `starting with "."`},
		{key: "ns/.put-123", wantInErr: `starting with "."`},
		{key: "NS/x", wantInErr: "outside"},
		{key: "ns/x y", wantInErr: "outside"},
		{key: `ns\x`, wantInErr: "outside"},
		{key: "ns/\x00", wantInErr: "outside"},
		{key: "ns/é", wantInErr: "outside"},
		{key: strings.Repeat("a", MaxKey), keyOK: true, prefixOK: true},
		{key: strings.Repeat("a", MaxKey+1), wantInErr: "more than"},
	} {
		name := tc.key
		if len(name) > 40 {
			name = fmt.Sprintf("%d bytes", len(name))
		}
		t.Run(name, func(t *testing.T) {
			err := CheckKey(tc.key)
			if (err == nil) != tc.keyOK {
				t.Fatalf("CheckKey(%q) = %v, want ok=%v", tc.key, err, tc.keyOK)
			}
			if err != nil && !strings.Contains(err.Error(), tc.wantInErr) {
				t.Errorf("CheckKey(%q) = %q, want it to say %q", tc.key, err, tc.wantInErr)
			}
			if err := CheckPrefix(tc.key); (err == nil) != tc.prefixOK {
				t.Errorf("CheckPrefix(%q) = %v, want ok=%v", tc.key, err, tc.prefixOK)
			}
		})
	}
}

func TestFilesRefusesBadKeys(t *testing.T) {
	dir := t.TempDir()
	b := newFiles(t, filepath.Join(dir, "blobs"))
	ctx := context.Background()
	for _, key := range []string{"../escape", "/abs", "a/../../escape", "A"} {
		if err := b.Put(ctx, key, []byte("x")); err == nil {
			t.Errorf("Put(%q) succeeded", key)
		}
		if _, err := b.Get(ctx, key); err == nil || errors.Is(err, archive.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want a refusal", key, err)
		}
		if err := b.DeletePrefix(ctx, key); err == nil {
			t.Errorf("DeletePrefix(%q) succeeded", key)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "escape")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused key wrote outside the directory: %v", err)
	}
}

func TestFilesPutGet(t *testing.T) {
	b := newFiles(t, t.TempDir())
	ctx := context.Background()
	if _, err := b.Get(ctx, "ns/u/x"); !errors.Is(err, archive.ErrNotFound) {
		t.Fatalf("Get of an absent key = %v, want ErrNotFound", err)
	}
	put(t, b, "ns/u/x", "first")
	if got := get(t, b, "ns/u/x"); got != "first" {
		t.Errorf("Get = %q, want %q", got, "first")
	}
	put(t, b, "ns/u/x", "second, longer")
	if got := get(t, b, "ns/u/x"); got != "second, longer" {
		t.Errorf("Get after replace = %q, want %q", got, "second, longer")
	}
	put(t, b, "ns/u/empty", "")
	if got := get(t, b, "ns/u/empty"); got != "" {
		t.Errorf("Get of an empty value = %q", got)
	}
}

func TestFilesPutLeavesNoTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	b := newFiles(t, dir)
	for range 3 {
		put(t, b, "ns/u/x", "data")
	}
	entries, err := os.ReadDir(filepath.Join(dir, "ns", "u"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{"x"}, names); diff != "" {
		t.Errorf("files beside the key (-want +got):\n%s", diff)
	}
}

func TestFilesDeletePrefix(t *testing.T) {
	ctx := context.Background()
	keys := []string{"ns/uid1/a/0", "ns/uid1/b/0", "ns/uid10/a/0", "ns/uid2/a/0", "other/uid1/a/0"}
	for _, tc := range []struct {
		prefix string
		left   []string
	}{
		{prefix: "ns/uid1/", left: []string{"ns/uid10/a/0", "ns/uid2/a/0", "other/uid1/a/0"}},
		{prefix: "ns/uid1", left: []string{"ns/uid2/a/0", "other/uid1/a/0"}},
		{prefix: "ns/uid1/a/", left: []string{"ns/uid1/b/0", "ns/uid10/a/0", "ns/uid2/a/0", "other/uid1/a/0"}},
		{prefix: "ns/", left: []string{"other/uid1/a/0"}},
		{prefix: "none/", left: keys},
		{prefix: "ns/none", left: keys},
	} {
		t.Run(tc.prefix, func(t *testing.T) {
			b := newFiles(t, t.TempDir())
			for _, k := range keys {
				put(t, b, k, k)
			}
			if err := b.DeletePrefix(ctx, tc.prefix); err != nil {
				t.Fatalf("DeletePrefix: %v", err)
			}
			var left []string
			for _, k := range keys {
				_, err := b.Get(ctx, k)
				switch {
				case err == nil:
					left = append(left, k)
				case !errors.Is(err, archive.ErrNotFound):
					t.Fatalf("Get(%q): %v", k, err)
				}
			}
			if diff := cmp.Diff(tc.left, left); diff != "" {
				t.Errorf("keys left (-want +got):\n%s", diff)
			}
		})
	}
}

func newFiles(t *testing.T, dir string) Blobs {
	t.Helper()
	b, err := Files(dir)
	if err != nil {
		t.Fatalf("Files: %v", err)
	}
	return b
}

func put(t *testing.T, b Blobs, key, value string) {
	t.Helper()
	if err := b.Put(context.Background(), key, []byte(value)); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func get(t *testing.T, b Blobs, key string) string {
	t.Helper()
	r, err := b.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return string(data)
}
