package bench

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// startCountingProxy serves the API server on a loopback port, with the harness's
// credentials, and counts every request into counts as countingConfig does for an
// operator in this process: the manager binary in its own process is counted alike.
// It returns a kubeconfig that points at it. Watches stream through unbuffered.
func startCountingProxy(tb testing.TB, counts *apiCounts) string {
	tb.Helper()
	target, err := url.Parse(cfg.Host)
	if err != nil {
		tb.Fatal(err)
	}
	rt, err := rest.TransportFor(harnessConfig())
	if err != nil {
		tb.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = target.Host
			// An event's body says what it is about (the counts tell run events from
			// the trigger's): keep it readable twice.
			if r.Out.Method == http.MethodPost && strings.HasSuffix(r.Out.URL.Path, "/events") && r.Out.Body != nil {
				b, _ := io.ReadAll(io.LimitReader(r.Out.Body, 1<<20))
				r.Out.Body = io.NopCloser(bytes.NewReader(b))
				r.Out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
			}
		},
		Transport:     counts.wrap(rt),
		FlushInterval: -1,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: proxy}
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Close() })

	kc := clientcmdapi.NewConfig()
	kc.Clusters["proxy"] = &clientcmdapi.Cluster{Server: "http://" + ln.Addr().String()}
	kc.AuthInfos["proxy"] = &clientcmdapi.AuthInfo{}
	kc.Contexts["proxy"] = &clientcmdapi.Context{Cluster: "proxy", AuthInfo: "proxy"}
	kc.CurrentContext = "proxy"
	path := filepath.Join(tb.TempDir(), "proxy.kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		tb.Fatal(err)
	}
	return path
}
