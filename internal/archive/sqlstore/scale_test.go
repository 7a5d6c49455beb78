package sqlstore_test

import (
	"testing"

	// Registers database/sql's "pgx" driver, which sqlstore.Open takes by name.
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/flow-ci/flow-ci/internal/archive"
	"github.com/flow-ci/flow-ci/internal/archive/archivetest"
	"github.com/flow-ci/flow-ci/internal/archive/blob"
	"github.com/flow-ci/flow-ci/internal/archive/sqlstore"
)

// TestConformancePostgresS3 runs the conformance suite against the archive's scaled-out
// backend: a real PostgreSQL for records and log states, a real S3-compatible store
// (versitygw) for log chunks. One server of each serves the whole suite; every case
// gets a database and a bucket of its own.
func TestConformancePostgresS3(t *testing.T) {
	pg := archivetest.StartPostgres(t)
	s3 := archivetest.StartS3(t)
	archivetest.Conformance(t, func(t *testing.T) func() archive.Store {
		dsn, bucket := pg.Database(t), s3.Bucket(t)
		return func() archive.Store {
			blobs, err := blob.S3(t.Context(), bucket)
			if err != nil {
				t.Fatal(err)
			}
			s, err := sqlstore.Open(t.Context(), "pgx", dsn, blobs)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	})
}
