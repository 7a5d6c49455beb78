package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/rest"

	"github.com/flow-ci/flow-ci/controllers/access"
	"github.com/flow-ci/flow-ci/internal/webview"
)

func newUICmd(kube *kubeFlags, streams genericclioptions.IOStreams) *cobra.Command {
	var listen string
	var hosts []string
	var inCluster, all bool
	c := &cobra.Command{
		Use:   "ui",
		Short: "Serve a read-only web view of runs, their live logs and triggers",
		Long: `Serves the web view on 127.0.0.1 with your own kubeconfig, so your RBAC applies and the
server needs no login; it answers only to localhost, 127.0.0.1 and [::1] with its port
(and --host), so no other web page can read it. Lists show the kubeconfig's namespace
(or -n), every namespace with -A; the filter form picks another.

In a cluster (config/ui, --in-cluster) it reads with its own ServiceAccount and serves
each reader only what Kubernetes lets them read: every request carries a Kubernetes
token (an Authorization header from an authenticating proxy, or a token signed in on its
login page), checked with a TokenReview, and every namespace is checked with a
SubjectAccessReview (runs and triggers: list and get; logs: get on pods/log).

With the run archive (config/archive), the runs list goes on with the runs it keeps,
a run gone from the cluster has its page from the archive's record, and a step whose
pods are gone shows its whole log. On a laptop the archive is found as the other
commands find it (--archive-url, or the ConfigMap flow-ci-archive-ca) and read with
your kubeconfig's token; in a cluster it is reached at its Service (the
FLOW_CI_ARCHIVE_SERVICE_HOST and _PORT variables of its namespace, or --archive-url),
and each reader's own token goes with each read, never the web view's.`,
		Example: "  flowci ui                       # http://127.0.0.1:8080/\n  flowci ui -n ci --listen 127.0.0.1:9000",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var k *clients
			var err error
			if inCluster {
				k, err = inClusterClients()
			} else {
				k, err = kube.clients()
			}
			if err != nil {
				return err
			}
			if all {
				k.namespace = "" // lists show every namespace the viewer may list
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			opts := webview.Options{Client: k.c, Logs: k.logs, Namespace: k.namespace}
			if inCluster {
				opts.Access = access.New(k.kube)
			} else {
				opts.Hosts = append(webview.LoopbackHosts(ln.Addr()), hosts...)
			}
			if opts.Archive, err = uiArchive(cmd.Context(), kube, k, inCluster); err != nil {
				fmt.Fprintf(streams.ErrOut, "flowci ui: without the run archive: %v\n", err)
			}
			srv, err := webview.New(opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(streams.ErrOut, "flowci ui: serving http://%s/\n", ln.Addr())
			return serve(cmd.Context(), ln, srv)
		},
	}
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "Address to serve on.")
	c.Flags().StringSliceVar(&hosts, "host", nil, "Another host:port the web view answers to (besides localhost, 127.0.0.1 and [::1] with its port); not with --in-cluster.")
	c.Flags().BoolVar(&inCluster, "in-cluster", false, "Use the pod's ServiceAccount and authenticate and authorize every reader (config/ui); lists show every namespace the reader may list.")
	c.Flags().BoolVarP(&all, "all-namespaces", "A", false, "Lists show every namespace you may list.")
	return c
}

// serve runs the web view until ctx ends or a signal arrives. Every deadline but the
// write one is set here; live log streams set their own per write.
func serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	go func() { <-ctx.Done(); _ = hs.Shutdown(context.Background()) }()
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func inClusterClients() (*clients, error) {
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, err
	}
	return clientsFor(cfg, "")
}
