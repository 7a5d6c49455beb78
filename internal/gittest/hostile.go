package gittest

import (
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Hostile is a misbehaving git server on loopback, for tests of read budgets and of
// the egress policy. Written counts the bytes its handler managed to send.
type Hostile struct {
	URL     string // a repository URL on the server
	Written atomic.Int64
}

// HostileKind picks the misbehaviour.
type HostileKind int

const (
	// EndlessRefs answers the ref advertisement with refs that never end.
	EndlessRefs HostileKind = iota
	// HugeErrorBody answers 404 with a 200 MiB body that names an internal secret.
	HugeErrorBody
	// RedirectTo redirects every request to Target.
	RedirectTo
	// SlowDrip sends a valid advertisement header, then one byte every 100 ms.
	SlowDrip
	// GzipRefs answers the ref advertisement gzip-compressed, asked or not: endless
	// refs with 1 KiB names, about 1 MiB decoded per KiB on the wire.
	GzipRefs
	// GzipLongRefs is the measured attack: 5,000 refs with 60 KB names, gzip-compressed
	// (about 400 KB on the wire, 300 MB decoded).
	GzipLongRefs
	// GzipPack advertises one branch plainly, then answers upload-pack with an endless
	// gzip-compressed pack.
	GzipPack
)

// GzipHead is the commit the gzip servers advertise as refs/heads/main.
var GzipHead = strings.Repeat("1", 40)

// HostileSecret is the text HugeErrorBody's body carries; it must never reach a message.
const HostileSecret = "internal-service-secret-4711"

// NewHostileServer starts a hostile server of the given kind on loopback; target is the
// redirect target for RedirectTo.
func NewHostileServer(t testing.TB, kind HostileKind, target string) *Hostile {
	t.Helper()
	return NewHostileServerOn(t, "", kind, target)
}

// NewHostileServerOn is NewHostileServer listening on addr ("" for loopback), such as
// the cluster bridge's gateway, where pods and the operator can reach it.
func NewHostileServerOn(t testing.TB, addr string, kind HostileKind, target string) *Hostile {
	t.Helper()
	h := &Hostile{}
	write := func(w http.ResponseWriter, s string) bool {
		n, err := w.Write([]byte(s))
		h.Written.Add(int64(n))
		return err == nil
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch kind {
		case EndlessRefs:
			w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
			write(w, pkt("# service=git-upload-pack\n")+"0000")
			write(w, pkt(strings.Repeat("1", 40)+" refs/heads/main\x00multi_ack side-band-64k shallow\n"))
			for i := 0; ; i++ {
				if !write(w, pkt(fmt.Sprintf("%040x refs/heads/branch-%d\n", i, i))) {
					return
				}
			}
		case HugeErrorBody:
			w.WriteHeader(http.StatusNotFound)
			chunk := strings.Repeat(HostileSecret+" ", 1<<10)
			for h.Written.Load() < 200<<20 {
				if !write(w, chunk) {
					return
				}
			}
		case RedirectTo:
			http.Redirect(w, r, target+r.URL.Path+"?"+r.URL.RawQuery, http.StatusFound)
		case GzipRefs, GzipLongRefs, GzipPack:
			serveGzip(w, r, kind, write)
		case SlowDrip:
			w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
			write(w, pkt("# service=git-upload-pack\n")+"0000")
			write(w, "0fff") // a pkt-line whose 4 KiB never finish arriving
			for r.Context().Err() == nil {
				if !write(w, "1") {
					return
				}
				w.(http.Flusher).Flush()
				time.Sleep(100 * time.Millisecond)
			}
		}
	}))
	if addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("listen on %s: %v", addr, err)
		}
		_ = srv.Listener.Close()
		srv.Listener = ln
	}
	srv.Start()
	t.Cleanup(srv.Close)
	h.URL = srv.URL + "/repo.git"
	return h
}

// pkt frames s as a git pkt-line.
func pkt(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }

// serveGzip answers as the gzip kinds do. Every body is gzip-compressed whatever the
// request's Accept-Encoding says, as a hostile server would.
func serveGzip(w http.ResponseWriter, r *http.Request, kind HostileKind, write func(http.ResponseWriter, string) bool) {
	caps := "\x00ofs-delta side-band-64k no-progress\n"
	if strings.HasSuffix(r.URL.Path, "/info/refs") {
		w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
		if kind == GzipPack {
			write(w, pkt("# service=git-upload-pack\n")+"0000"+pkt(GzipHead+" refs/heads/main"+caps)+"0000")
			return
		}
	} else {
		w.Header().Set("Content-Type", "application/x-git-upload-pack-result")
	}
	w.Header().Set("Content-Encoding", "gzip")
	zw, _ := gzip.NewWriterLevel(countingWriter{w: w, write: write}, gzip.BestCompression)
	defer zw.Close()
	emit := func(s string) bool { _, err := io.WriteString(zw, s); return err == nil }
	switch kind {
	case GzipRefs:
		emit(pkt("# service=git-upload-pack\n") + "0000" + pkt(GzipHead+" refs/heads/main"+caps))
		name := strings.Repeat("x", 1<<10)
		for i := 0; emit(pkt(fmt.Sprintf("%040x refs/heads/%s-%d\n", i, name, i))); i++ {
		}
	case GzipLongRefs:
		emit(pkt("# service=git-upload-pack\n") + "0000" + pkt(GzipHead+" refs/heads/main"+caps))
		name := strings.Repeat("y", 60_000)
		for i := 0; i < 5000 && emit(pkt(fmt.Sprintf("%040x refs/heads/%s-%d\n", i, name, i))); i++ {
		}
		emit("0000")
	case GzipPack:
		chunk := "\x01" + strings.Repeat("P", 65000)
		for ok := emit(pkt("NAK\n") + pkt("\x01PACK\x00\x00\x00\x02\x00\x00\x00\x01")); ok; ok = emit(pkt(chunk)) {
		}
	}
}

// countingWriter passes writes to write, which counts what reached the wire.
type countingWriter struct {
	w     http.ResponseWriter
	write func(http.ResponseWriter, string) bool
}

func (c countingWriter) Write(p []byte) (int, error) {
	if !c.write(c.w, string(p)) {
		return 0, io.ErrClosedPipe
	}
	return len(p), nil
}
