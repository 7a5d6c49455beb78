package gitsource

import (
	"context"
	"strings"
	"testing"

	"github.com/flow-ci/flow-ci/internal/gittest"
)

// BenchmarkHostileReads reports the peak heap of one read from each hostile server:
// the figure the read budgets bound (before them: 1.29 GB for the 300 MiB blob, 950 MB
// for the error body, 656 MB in 8 s for the endless advertisement; before decoded bytes
// were counted, the gzip advertisement of 5,000 refs of 60 KB OOM-killed the operator
// under its 256 MiB limit). The servers run in this process too, so their own buffers
// (and gzip compressors) are in the figure.
func BenchmarkHostileReads(b *testing.B) {
	ctx := context.Background()
	zeros := gittest.NewRepo(b, map[string]string{pipelinePath: "name: x\n", "zeros.bin": strings.Repeat("\x00", 300<<20)})
	srv := gittest.NewHTTPServer(b, zeros.Root, gittest.HTTPOptions{})
	tip := zeros.RevParse(b, "main")
	cases := []struct {
		name string
		read func() error
	}{
		{"unfiltered-300MiB-blob", func() error {
			_, err := ReadFile(ctx, srv.RepoURL(zeros), tip, pipelinePath, maxPipelineFile, nil, loopback)
			return err
		}},
		{"endless-refs", func() error {
			_, err := ResolveCommit(ctx, gittest.NewHostileServer(b, gittest.EndlessRefs, "").URL, "main", "", nil, loopback)
			return err
		}},
		{"gzip-5000-refs-of-60KB", func() error {
			_, err := ResolveCommit(ctx, gittest.NewHostileServer(b, gittest.GzipLongRefs, "").URL, "main", "", nil, loopback)
			return err
		}},
		{"gzip-endless-refs", func() error {
			_, err := ListBranches(ctx, gittest.NewHostileServer(b, gittest.GzipRefs, "").URL, nil, loopback)
			return err
		}},
		{"gzip-endless-pack", func() error {
			_, err := ReadFile(ctx, gittest.NewHostileServer(b, gittest.GzipPack, "").URL, gittest.GzipHead, pipelinePath, maxPipelineFile, nil, loopback)
			return err
		}},
		{"200MiB-error-body", func() error {
			_, err := ResolveCommit(ctx, gittest.NewHostileServer(b, gittest.HugeErrorBody, "").URL, "main", "", nil, loopback)
			return err
		}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			var peak uint64
			for range b.N {
				var err error
				peak = max(peak, peakHeapDuring(func() { err = tc.read() }))
				if err == nil {
					b.Fatal("the hostile read succeeded")
				}
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}
