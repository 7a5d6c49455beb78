package blob

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/flow-ci/flow-ci/internal/archive"
)

// S3Config says where an S3-compatible object store keeps the blobs.
type S3Config struct {
	// Endpoint is the store's host[:port], without a scheme (e.g. s3.example.com or
	// 127.0.0.1:7070).
	Endpoint string
	// Bucket must exist: the archive does not create buckets, which usually carry
	// policies (lifecycle, encryption, access) that belong to whoever runs the store.
	Bucket string
	// Region is the bucket's region; "" asks the store.
	Region string
	// AccessKey and SecretKey sign every request (AWS signature v4).
	AccessKey string
	SecretKey string
	// Prefix, if set, is a path inside the bucket that every key is stored under, so
	// that the archive can share a bucket.
	Prefix string
	// Insecure talks plain HTTP instead of HTTPS.
	Insecure bool
	// CAFile is a PEM bundle of extra certificate authorities trusted for HTTPS,
	// besides the system's (for a store with a private CA).
	CAFile string
}

// s3Blobs keeps each key as the object prefix+key.
type s3Blobs struct {
	client *minio.Client
	bucket string
	prefix string // "" or ending with "/"
}

// S3 keeps blobs in an S3-compatible object store. It addresses buckets by path
// (endpoint/bucket/key), which every S3-compatible store serves, unlike virtual-host
// names that need DNS for each bucket. It checks that the bucket exists and is
// reachable with these credentials, so that a wrong setting fails at start rather than
// at the first log.
func S3(ctx context.Context, c S3Config) (Blobs, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	tr, err := minio.DefaultTransport(!c.Insecure)
	if err != nil {
		return nil, fmt.Errorf("s3 transport: %w", err)
	}
	if c.CAFile != "" {
		pool, err := certPool(c.CAFile)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	client, err := minio.New(c.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""),
		Secure:       !c.Insecure,
		Transport:    tr,
		Region:       c.Region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 endpoint %q: %w", c.Endpoint, err)
	}
	ok, err := client.BucketExists(ctx, c.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3 bucket %q at %s: %w", c.Bucket, c.Endpoint, err)
	}
	if !ok {
		return nil, fmt.Errorf("s3 bucket %q does not exist at %s: create it first (the archive does not create buckets)", c.Bucket, c.Endpoint)
	}
	prefix := strings.TrimSuffix(c.Prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &s3Blobs{client: client, bucket: c.Bucket, prefix: prefix}, nil
}

func (c S3Config) validate() error {
	switch {
	case c.Endpoint == "":
		return errors.New("s3 endpoint is empty")
	case strings.Contains(c.Endpoint, "://"):
		return fmt.Errorf("s3 endpoint %q has a scheme: give host[:port], and Insecure for plain HTTP", c.Endpoint)
	case c.Bucket == "":
		return errors.New("s3 bucket is empty")
	case c.AccessKey == "" || c.SecretKey == "":
		return errors.New("s3 access key and secret key are both required")
	case c.Insecure && c.CAFile != "":
		return errors.New("s3 CA file is set but Insecure (plain HTTP) is too: a CA only applies to HTTPS")
	}
	if c.Prefix != "" {
		if err := CheckPrefix(c.Prefix); err != nil {
			return fmt.Errorf("s3 prefix: %w", err)
		}
	}
	return nil
}

// certPool is the system's certificate authorities plus those in file.
func certPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("s3 CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("s3 CA file %s holds no PEM certificate", file)
	}
	return pool, nil
}

// Put is one PUT: S3 replaces an object whole, so a reader sees the old value or the
// new one, and the store acknowledges only what it stored.
func (s *s3Blobs) Put(ctx context.Context, key string, data []byte) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	_, err := s.client.PutObject(ctx, s.bucket, s.prefix+key, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// streamPartSize is the part size of PutStream's multipart uploads (objects larger
// than one part). minio-go uploads a reader that is not an io.ReaderAt one part at a
// time through one buffer of the part size, so the part size is what an upload holds
// in memory. Left at 0, minio-go picks the smallest multiple of 16 MiB that fits the
// object in S3's 10,000 parts: 16 MiB up to 156.25 GiB (a 2 GiB object is 128 parts),
// then growing with the object (528 MiB for 5 TiB). Set, it stays 16 MiB, and
// PutStream refuses what would need more parts.
const streamPartSize = 16 << 20

// maxStreamSize is the largest object PutStream takes: 10,000 parts.
const maxStreamSize = streamPartSize * 10000

// PutStream is one PUT with the size known, or a multipart upload above
// streamPartSize, which S3 publishes only when it completes. The exactReader fails
// the PUT's body or the last part before the upload completes when r has not
// exactly size bytes, so no object of the wrong length is ever published; minio-go
// aborts a failed multipart upload, which removes its parts. An upload a crash
// interrupts leaves its parts, unseen, until the bucket's lifecycle rule for
// incomplete multipart uploads (AbortIncompleteMultipartUpload), if any, removes them.
func (s *s3Blobs) PutStream(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if err := checkSize(size); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if size > maxStreamSize {
		return fmt.Errorf("put %s: %d bytes is more than the %d an object of %d parts of %d bytes holds",
			key, size, int64(maxStreamSize), 10000, streamPartSize)
	}
	er := newExactReader(ctx, r, size)
	if size == 0 {
		// minio-go sends an empty PUT without reading r at all.
		if _, err := er.Read(nil); err != io.EOF {
			return fmt.Errorf("put %s: %w", key, err)
		}
	}
	_, err := s.client.PutObject(ctx, s.bucket, s.prefix+key, er, size, minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		PartSize:    streamPartSize,
	})
	if er.err != nil && er.err != io.EOF {
		// The reader's own error says what was wrong with the body; minio-go's wraps
		// it or says only that the upload stopped.
		return fmt.Errorf("put %s: %w", key, er.err)
	}
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// Get uses the low-level GET, which fails at once for an absent key, where
// Client.GetObject only fails at the first Read.
func (s *s3Blobs) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	core := minio.Core{Client: s.client}
	body, _, _, err := core.GetObject(ctx, s.bucket, s.prefix+key, minio.GetObjectOptions{})
	if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
		return nil, fmt.Errorf("blob %s: %w", key, archive.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return body, nil
}

// DeletePrefix lists the objects under the prefix and removes them in batches (S3's
// multi-object delete, up to 1000 keys a request) as the listing goes. A prefix that
// does not end with "/" also matches longer names, as it does for Files.
func (s *s3Blobs) DeletePrefix(ctx context.Context, prefix string) error {
	if err := CheckPrefix(prefix); err != nil {
		return err
	}
	// ListObjectsIter asks for its context to be cancelled when its results are left
	// unread, as they are when the removal stops early.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var listErr error
	listed := func(yield func(minio.ObjectInfo) bool) {
		for o := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
			if o.Err != nil {
				listErr = o.Err
				return
			}
			if !yield(o) {
				return
			}
		}
	}
	results, err := s.client.RemoveObjectsWithIter(ctx, s.bucket, listed, minio.RemoveObjectsOptions{})
	if err != nil {
		return fmt.Errorf("delete %s: %w", prefix, err)
	}
	for r := range results {
		if r.Err != nil {
			return fmt.Errorf("delete %s: %s: %w", prefix, strings.TrimPrefix(r.ObjectName, s.prefix), r.Err)
		}
	}
	if listErr != nil {
		return fmt.Errorf("delete %s: list: %w", prefix, listErr)
	}
	return nil
}
