package bench

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/flow-ci/flow-ci/internal/wsfiles"
)

// The cache figure: saving and restoring a cache with internal/wsfiles (Pack, Unpack)
// against GNU tar with the zstd CLI on the same files, at the same level (Pack's
// SpeedDefault is zstd's level 3) and the same compression threads: Pack compresses
// on one goroutine, so zstd runs with -T1. tar and zstd are two processes, so tar's
// file reads and writes overlap zstd's work on a second core, where Pack and Unpack
// do both on one goroutine; the CPU seconds beside each rate show that.
//
// The package's TestMain starts envtest, which this benchmark does not use: run it
// as `go test ./test/bench -run '^$' -bench BenchmarkCacheTar -benchtime 1x` with
// KUBEBUILDER_ASSETS set, as for the rest of the package.

// cacheZstd is the tar side's compressor: zstd level 3 on one thread, as Pack uses.
const cacheZstd = "zstd -3 -T1"

// cacheCorpusMiB is the corpus size: FLOWCI_BENCH_CACHE_MIB, else 500 MiB (the
// issue's figure), or 50 MiB under -short so that a default `make bench` stays cheap.
func cacheCorpusMiB() int {
	if n, err := strconv.Atoi(os.Getenv("FLOWCI_BENCH_CACHE_MIB")); err == nil && n > 0 {
		return n
	}
	if testing.Short() {
		return 50
	}
	return 500
}

// cacheRun is one timed operation: its wall time and the CPU time it used.
type cacheRun struct {
	wall, cpu time.Duration
	size      int64 // the archive's size, for saves
}

// BenchmarkCacheTar times save (Pack, tar -c) and restore (Unpack, tar -x) of a cache
// shaped like a Go build and module cache, reports MiB/s of uncompressed content for
// each, and prints them side by side. It checks that each side restores every file,
// never how fast. Run it with -benchtime 1x.
func BenchmarkCacheTar(b *testing.B) {
	for _, tool := range []string{"tar", "zstd"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("%s is not installed: the figure compares against it", tool)
		}
	}
	mib := cacheCorpusMiB()
	work := b.TempDir()
	src := filepath.Join(work, "src")
	files, size := cacheCorpus(b, src, mib)
	b.Logf("corpus: %d files, %.0f MiB under %s", files, float64(size)/(1<<20), src)
	ours, theirs := filepath.Join(work, "cache.tar.zst"), filepath.Join(work, "gnu.tar.zst")
	results := map[string]cacheRun{}
	measure := func(name string, op func(dst string) cacheRun) {
		b.Run(name, func(b *testing.B) {
			var sum cacheRun
			for i := range b.N {
				dst := filepath.Join(work, fmt.Sprintf("restored-%d", i))
				b.StopTimer()
				syscall.Sync() // no side pays for the other's dirty pages
				b.StartTimer()
				r := op(dst)
				b.StopTimer()
				if err := os.RemoveAll(dst); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				sum = cacheRun{wall: sum.wall + r.wall, cpu: sum.cpu + r.cpu, size: r.size}
			}
			avg := cacheRun{wall: sum.wall / time.Duration(b.N), cpu: sum.cpu / time.Duration(b.N), size: sum.size}
			b.ReportMetric(float64(size)/(1<<20)/avg.wall.Seconds(), "MiB/s")
			b.ReportMetric(avg.cpu.Seconds(), "cpu-s/op")
			results[name] = avg
		})
	}
	measure("save/wsfiles", func(string) cacheRun { return packCache(b, src, ours) })
	measure("save/tar", func(string) cacheRun { return tarSave(b, src, theirs) })
	measure("restore/wsfiles", func(dst string) cacheRun {
		if _, err := os.Stat(ours); err != nil { // -bench skipped the save
			packCache(b, src, ours)
		}
		return unpackCache(b, ours, dst, files)
	})
	measure("restore/tar", func(dst string) cacheRun {
		if _, err := os.Stat(theirs); err != nil {
			tarSave(b, src, theirs)
		}
		return untarCache(b, theirs, dst, files)
	})

	if len(results) < 4 {
		return // -bench chose some of them: no side by side
	}
	rate := func(name string) string {
		r := results[name]
		return fmt.Sprintf("%4.0f MiB/s (%.1f CPU s)", float64(size)/(1<<20)/r.wall.Seconds(), r.cpu.Seconds())
	}
	ratio := func(name string) string {
		return fmt.Sprintf("%.2f:1", float64(size)/float64(max(results[name].size, 1)))
	}
	row := func(what, ours, theirs string) { fmt.Printf("%-30s %-26s %s\n", what, ours, theirs) }
	fmt.Println()
	row(fmt.Sprintf("cache of %d MiB, %d files", mib, files), "wsfiles", "tar -I '"+cacheZstd+"'")
	row("  save", rate("save/wsfiles"), rate("save/tar"))
	row("  restore", rate("restore/wsfiles"), rate("restore/tar"))
	row("  compression", ratio("save/wsfiles"), ratio("save/tar"))
}

// packCache writes src's cache to archive with Pack.
func packCache(b *testing.B, src, archive string) cacheRun {
	f, err := os.Create(archive)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var r cacheRun
	timed(&r, func() {
		_, err = wsfiles.Pack(f, src, []string{"."}, wsfiles.PackLimits{})
		if err == nil {
			err = f.Close()
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	r.size = fileSize(b, archive)
	return r
}

// unpackCache restores archive into dst with Unpack and checks the file count.
func unpackCache(b *testing.B, archive, dst string, files int) cacheRun {
	if err := os.Mkdir(dst, 0o755); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(archive)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var r cacheRun
	var st wsfiles.Stats
	timed(&r, func() { st, err = wsfiles.Unpack(f, dst, wsfiles.UnpackLimits{}) })
	if err != nil {
		b.Fatal(err)
	}
	if st.Files != files {
		b.Fatalf("Unpack restored %d files of %d", st.Files, files)
	}
	return r
}

// tarSave writes dir's cache to archive with GNU tar and the zstd CLI. The CPU time
// is tar's and zstd's: tar waits for zstd, and wait4 counts a child's waited-for
// children in its usage.
func tarSave(b *testing.B, dir, archive string) cacheRun {
	cmd := exec.Command("tar", "-I", cacheZstd, "-cf", archive, "-C", dir, ".")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("tar -c: %v\n%s", err, out)
	}
	return cacheRun{wall: time.Since(start), cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(),
		size: fileSize(b, archive)}
}

// untarCache restores archive into dst with tar and checks the file count.
func untarCache(b *testing.B, archive, dst string, files int) cacheRun {
	if err := os.Mkdir(dst, 0o755); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command("tar", "-I", cacheZstd, "-xf", archive, "-C", dst)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("tar -x: %v\n%s", err, out)
	}
	r := cacheRun{wall: time.Since(start), cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
	if n := countFiles(b, dst); n != files {
		b.Fatalf("tar restored %d files of %d", n, files)
	}
	return r
}

// timed runs f and records its wall time and this process's CPU time over it (the
// garbage collector's included: it is part of the cost).
func timed(r *cacheRun, f func()) {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	c0, t0 := cpu(), time.Now()
	f()
	r.wall, r.cpu = time.Since(t0), cpu()-c0
}

func fileSize(b *testing.B, name string) int64 {
	fi, err := os.Stat(name)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}

func countFiles(b *testing.B, dir string) int {
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// cacheCorpus writes about mib MiB under dir, the same for every run: a Go build cache
// (256 directories of 1–64 KiB outputs named by hash) and a module cache (sources of
// 1–64 KiB, and a few module zips of 2–8 MiB, about 15% of the bytes). It returns the
// file count and their total size.
func cacheCorpus(b *testing.B, dir string, mib int) (files int, size int64) {
	g := newCacheContent(7)
	target := int64(mib) << 20
	write := func(name string, n int) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, g.fill(n), 0o644); err != nil {
			b.Fatal(err)
		}
		files++
		size += int64(n)
	}
	for i := 0; size < target*15/100; i++ {
		write(fmt.Sprintf("pkg/mod/cache/download/example.com/m%03d/@v/v1.%d.0.zip", i, i%7), (2+g.rng.IntN(7))<<20)
	}
	for i := 0; size < target; i++ {
		n := (1 + g.rng.IntN(64)) << 10
		if i%2 == 0 {
			write(fmt.Sprintf("go-build/%02x/%016x%016x-d", i%256, g.rng.Uint64(), g.rng.Uint64()), n)
		} else {
			write(fmt.Sprintf("pkg/mod/example.com/m%03d@v1.%d.0/pkg%02d/file%05d.go", i%300, i%7, i%23, i), n)
		}
	}
	return files, size
}

// cacheContent makes file content that zstd -3 compresses about 3:1, like object
// files: 40% of it copies of blocks from a 64 KiB pool (code and data repeated across
// files), 60% random bytes over a 16-byte alphabet.
type cacheContent struct {
	rng  *rand.Rand
	pool []byte
	buf  []byte
}

const cacheAlphabet = "\x00\x01\x02\x03\x04\x08\x0f\x10\x20\x40\x48\x89\x8b\xc3\xe8\xff"

func newCacheContent(seed uint64) *cacheContent {
	g := &cacheContent{rng: rand.New(rand.NewPCG(seed, seed+1)), pool: make([]byte, 64<<10)}
	g.random(g.pool)
	return g
}

// fill returns n bytes of content, valid until the next call.
func (g *cacheContent) fill(n int) []byte {
	if cap(g.buf) < n {
		g.buf = make([]byte, n)
	}
	out := g.buf[:n]
	for off := 0; off < n; {
		k := min(256+g.rng.IntN(3841), n-off)
		if g.rng.IntN(10) < 4 {
			start := g.rng.IntN(len(g.pool) - k + 1)
			copy(out[off:off+k], g.pool[start:])
		} else {
			g.random(out[off : off+k])
		}
		off += k
	}
	return out
}

// random fills p with bytes of the alphabet, sixteen from each 64-bit draw.
func (g *cacheContent) random(p []byte) {
	for i := 0; i < len(p); i += 16 {
		v := g.rng.Uint64()
		for j := i; j < min(i+16, len(p)); j++ {
			p[j] = cacheAlphabet[v&15]
			v >>= 4
		}
	}
}
