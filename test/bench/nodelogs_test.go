package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// logLines is what every container of the bench "wrote": a few timestamped lines, as
// the kubelet serves a log with timestamps.
const logLines = 3

// serveNodeLogs plays the kubelet's log endpoint of benchNode, where every pod of the
// completer "runs", so that the archive can read a run's logs through the API server
// (pods/log, which it proxies to the pod's node) and then record and release the run,
// as in a cluster. Without it the node does not exist, every log request fails, and
// the archive holds every run it saw start for as long as it runs. Each request gets
// the container's whole log and its end, as a log read after the container exited
// does: the archive streams before the container ends, so it reads again once it
// has. The node is registered at the returned server's port until stop.
func serveNodeLogs(tb testing.TB, cl *cluster) (stop func()) {
	tb.Helper()
	t0 := time.Now().UTC()
	// The API server does not verify a kubelet's certificate unless it is given
	// --kubelet-certificate-authority, which envtest does not pass.
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/containerLogs/"), "/")
		if len(parts) != 3 || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		for i := range logLines {
			// Stable stamps: a resumed read skips what was stored by the stamps.
			stamp := t0.Add(time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano)
			fmt.Fprintf(w, "%s %s %s: line %d of the bench's output\n", stamp, parts[1], parts[2], i)
		}
	}))
	tb.Cleanup(srv.Close) // if the cell fails before stop
	_, portText, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: benchNode}}
	err = cl.c.Create(ctx, node)
	if apierrors.IsAlreadyExists(err) { // an earlier cell's: registered at its server
		err = cl.c.Get(ctx, client.ObjectKeyFromObject(node), node)
	}
	if err != nil {
		tb.Fatal(err)
	}
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
	node.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(port)
	if err := cl.c.Status().Update(ctx, node); err != nil {
		tb.Fatal(err)
	}
	return srv.Close
}
