package main

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/rest"
)

//go:embed ui
var uiFiles embed.FS

func newUICmd(kube *kubeFlags, streams genericclioptions.IOStreams) *cobra.Command {
	var listen string
	var inCluster, all bool
	c := &cobra.Command{
		Use:   "ui",
		Short: "Serve a read-only web view of runs, their live logs and triggers",
		Long: `Serves the web view on 127.0.0.1 with your own kubeconfig, so your RBAC applies and the
server needs no login. Lists show the kubeconfig's namespace (or -n), every namespace
with -A; the filter form picks another. In a cluster, run it as its own read-only Deployment
(config/ui, --in-cluster) and reach it with kubectl port-forward.`,
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
			srv, err := newUIServer(k)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			fmt.Fprintf(streams.ErrOut, "flowci ui: serving http://%s/\n", ln.Addr())
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
			go func() { <-ctx.Done(); _ = hs.Shutdown(context.Background()) }()
			if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "Address to serve on.")
	c.Flags().BoolVar(&inCluster, "in-cluster", false, "Use the pod's ServiceAccount (the read-only Deployment of config/ui); lists show every namespace.")
	c.Flags().BoolVarP(&all, "all-namespaces", "A", false, "Lists show every namespace you may list.")
	return c
}

func inClusterClients() (*clients, error) {
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, err
	}
	return clientsFor(cfg, "")
}

// uiServer is the web view: server-rendered HTML from the API server's objects, read
// with the identity of whoever runs it.
type uiServer struct {
	k     *clients
	pages *template.Template
	mux   *http.ServeMux
}

func newUIServer(k *clients) (*uiServer, error) {
	pages, err := template.New("").Funcs(templateFuncs).ParseFS(uiFiles, "ui/*.html")
	if err != nil {
		return nil, err
	}
	s := &uiServer{k: k, pages: pages, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/runs", http.StatusFound) })
	s.mux.HandleFunc("GET /runs", s.runs)
	s.mux.HandleFunc("GET /runs/{ns}/{name}", s.run)
	s.mux.HandleFunc("GET /runs/{ns}/{name}/steps/{step}/log", s.stepLog)
	s.mux.HandleFunc("GET /triggers", s.triggers)
	s.mux.HandleFunc("GET /badge/{ns}/{trigger}/{branch...}", s.badge)
	static, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		return nil, err
	}
	s.mux.Handle("GET /static/", http.FileServerFS(static))
	return s, nil
}

func (s *uiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self'")
	s.mux.ServeHTTP(w, r)
}

// render writes a page; a template error is a 500 page, never a stack trace.
func (s *uiServer) render(w http.ResponseWriter, status int, page string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := s.pages.ExecuteTemplate(w, page, data); err != nil {
		fmt.Fprintf(w, "<p>could not render this page</p>")
	}
}

// fail shows a clear error page with the right status: 404 for what does not exist,
// 403 for what the viewer may not read, 400 for malformed input, 502 otherwise.
func (s *uiServer) fail(w http.ResponseWriter, err error) {
	status, title := http.StatusBadGateway, "The cluster did not answer"
	var bad badRequest
	switch {
	case errors.As(err, &bad):
		status, title = http.StatusBadRequest, "Bad request"
	case apierrors.IsNotFound(err):
		status, title = http.StatusNotFound, "Not found"
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		status, title = http.StatusForbidden, "Not allowed"
	}
	s.render(w, status, "error.html", map[string]any{"Title": title, "Status": status, "Message": err.Error()})
}

// badRequest is malformed input from the URL.
type badRequest struct{ msg string }

func (b badRequest) Error() string { return b.msg }

// checkName refuses a namespace or object name that cannot exist.
func checkName(kind, v string, optional bool) error {
	if v == "" && optional {
		return nil
	}
	if errs := validation.IsDNS1123Subdomain(v); len(errs) > 0 {
		return badRequest{fmt.Sprintf("%s %q is not a valid name", kind, v)}
	}
	return nil
}
