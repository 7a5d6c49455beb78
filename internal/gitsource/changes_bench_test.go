package gitsource

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flow-ci/flow-ci/internal/gittest"
)

// BenchmarkChangedFiles: the files 50 pushes changed (3 files each) in a repository of
// 10,000 files, as a path filter asks for them, against the git CLI doing the least a
// correct client must: a partial fetch (no blobs) deep enough to hold the base, then
// diff --name-only. Both talk to the same local git http-backend.
func BenchmarkChangedFiles(b *testing.B) {
	root := b.TempDir()
	files := map[string]string{pipelinePath: "name: x\n"}
	for i := 1; i < 10000; i++ {
		files[fmt.Sprintf("src/pkg%03d/file%05d.go", i%100, i)] = fmt.Sprintf("package pkg%03d\n// %d\n", i%100, i)
	}
	repo := gittest.NewRepoIn(b, root, "changes.git", files)
	repo.SetConfig(b, "uploadpack.allowFilter", "true")
	base := repo.RevParse(b, "main")
	for c := range 50 {
		change := map[string]string{}
		for j := range 3 {
			change[fmt.Sprintf("src/pkg%03d/file%05d.go", (c*3+j)%100, c*3+j+1)] = fmt.Sprintf("changed %d\n", c)
		}
		repo.Commit(b, change)
	}
	head := repo.RevParse(b, "main")
	srv := gittest.NewHTTPServer(b, root, gittest.HTTPOptions{})
	url := srv.RepoURL(repo)
	ctx := context.Background()

	b.Run("go-git", func(b *testing.B) {
		b.ReportAllocs()
		var peak uint64
		for range b.N {
			p := peakHeapDuring(func() {
				got, all, err := ChangedFiles(ctx, url, base, head, nil, loopback)
				if err != nil || all || len(got) != 150 {
					b.Fatalf("%d files, all=%v, %v", len(got), all, err)
				}
			})
			peak = max(peak, p)
		}
		b.ReportMetric(float64(peak), "peak-heap-B")
	})
	b.Run("git-cli", func(b *testing.B) {
		b.ReportAllocs()
		var peakRSS int64
		tmp := b.TempDir()
		for i := range b.N {
			dir := filepath.Join(tmp, fmt.Sprint(i))
			_, rss := runGit(b, "init", "--quiet", "--bare", dir)
			_, rss2 := runGit(b, "-C", dir, "fetch", "--quiet", "--no-tags", "--filter=blob:none", "--depth", "51", url, "main")
			out, rss3 := runGit(b, "-C", dir, "diff", "--name-only", base, head)
			if n := len(strings.Fields(string(out))); n != 150 {
				b.Fatalf("git diff listed %d files", n)
			}
			peakRSS = max(peakRSS, rss, rss2, rss3)
		}
		b.ReportMetric(float64(peakRSS), "peak-rss-B")
	})
}
