package blob_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/flow-ci/flow-ci/internal/archive"
	"github.com/flow-ci/flow-ci/internal/archive/archivetest"
	"github.com/flow-ci/flow-ci/internal/archive/blob"
)

// TestS3 runs the S3 backend against a real S3-compatible server (versitygw).
func TestS3(t *testing.T) {
	srv := archivetest.StartS3(t)
	ctx := t.Context()

	t.Run("round trip, missing key, bad keys", func(t *testing.T) {
		b := openS3(t, srv.Bucket(t))
		if err := b.Put(ctx, "ns/uid/clone/00000001.gz", []byte("one")); err != nil {
			t.Fatal(err)
		}
		if err := b.Put(ctx, "ns/uid/clone/00000001.gz", []byte("two")); err != nil {
			t.Fatal(err)
		}
		if got := read(t, b, "ns/uid/clone/00000001.gz"); got != "two" {
			t.Errorf("after replacing, Get = %q, want %q", got, "two")
		}
		if _, err := b.Get(ctx, "ns/uid/clone/00000002.gz"); !errors.Is(err, archive.ErrNotFound) {
			t.Errorf("Get of a missing key: %v, want archive.ErrNotFound", err)
		}
		for _, key := range []string{"", "../x", "ns/../x", "/ns/x", "ns//x", "ns/.x", "NS/x", "ns/x y", "ns/x/"} {
			if err := b.Put(ctx, key, []byte("x")); err == nil {
				t.Errorf("Put(%q) succeeded, want refused", key)
			}
			if _, err := b.Get(ctx, key); err == nil || errors.Is(err, archive.ErrNotFound) {
				t.Errorf("Get(%q) = %v, want refused", key, err)
			}
		}
		if err := b.DeletePrefix(ctx, "../"); err == nil {
			t.Error(`DeletePrefix("../") succeeded, want refused`)
		}
	})

	t.Run("DeletePrefix", func(t *testing.T) {
		b := openS3(t, srv.Bucket(t))
		// More than one page of the listing and one multi-object delete (1000 each).
		for i := range 1003 {
			put(t, b, fmt.Sprintf("ns/uid1/step-0/%08d.gz", i))
		}
		for _, k := range []string{"ns/uid1/clone/00000001.gz", "ns/uid2/clone/00000001.gz", "ns/uid10/clone/00000001.gz"} {
			put(t, b, k)
		}
		if err := b.DeletePrefix(ctx, "ns/uid1/"); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"ns/uid1/step-0/00000000.gz", "ns/uid1/step-0/00001002.gz", "ns/uid1/clone/00000001.gz"} {
			if _, err := b.Get(ctx, k); !errors.Is(err, archive.ErrNotFound) {
				t.Errorf("after DeletePrefix, Get(%q): %v, want archive.ErrNotFound", k, err)
			}
		}
		for _, k := range []string{"ns/uid2/clone/00000001.gz", "ns/uid10/clone/00000001.gz"} {
			read(t, b, k)
		}
		if err := b.DeletePrefix(ctx, "ns/none/"); err != nil {
			t.Errorf("DeletePrefix of nothing: %v", err)
		}
	})

	t.Run("Prefix keeps keys under it", func(t *testing.T) {
		cfg := srv.Bucket(t)
		whole := openS3(t, cfg)
		put(t, whole, "ns/uid/clone/00000001.gz")
		cfg.Prefix = "archive/v1"
		under := openS3(t, cfg)
		put(t, under, "ns/uid/clone/00000001.gz")
		if got := read(t, whole, "archive/v1/ns/uid/clone/00000001.gz"); got != "ns/uid/clone/00000001.gz" {
			t.Errorf("the prefixed blob holds %q", got)
		}
		if err := under.DeletePrefix(ctx, "ns/"); err != nil {
			t.Fatal(err)
		}
		read(t, whole, "ns/uid/clone/00000001.gz")
	})

	t.Run("PutStream", func(t *testing.T) {
		// One part's buffer (16 MiB), the HTTP client's and garbage the GC has not
		// collected yet (it runs when the heap doubles): well below the 128 MiB
		// stored, and the same for any size, since the part size is fixed.
		testPutStream(t, openS3(t, srv.Bucket(t)), 64*mib)
	})

	t.Run("settings refused at start", func(t *testing.T) {
		good := srv.Bucket(t)
		for name, tc := range map[string]struct {
			edit func(*blob.S3Config)
			want string
		}{
			"missing bucket": {func(c *blob.S3Config) { c.Bucket = "absent" }, `bucket "absent" does not exist`},
			"wrong secret":   {func(c *blob.S3Config) { c.SecretKey = "wrong" }, "access denied"},
			"scheme":         {func(c *blob.S3Config) { c.Endpoint = "http://" + c.Endpoint }, "has a scheme"},
			"bad prefix":     {func(c *blob.S3Config) { c.Prefix = "../x" }, "prefix"},
			"no keys":        {func(c *blob.S3Config) { c.AccessKey = "" }, "access key"},
		} {
			c := good
			tc.edit(&c)
			_, err := blob.S3(ctx, c)
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), tc.want) {
				t.Errorf("%s: S3() = %v, want an error with %q", name, err, tc.want)
			}
		}
	})
}

func openS3(t *testing.T, c blob.S3Config) blob.Blobs {
	t.Helper()
	b, err := blob.S3(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// put stores the key's own name under it.
func put(t *testing.T, b blob.Blobs, key string) {
	t.Helper()
	if err := b.Put(t.Context(), key, []byte(key)); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, b blob.Blobs, key string) string {
	t.Helper()
	r, err := b.Get(t.Context(), key)
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
