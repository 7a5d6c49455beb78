package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	archiveclient "github.com/flow-ci/flow-ci/internal/archive/client"
)

// What config/archive and `flow-ci archive` name by default: the ConfigMap in the
// archive's namespace that publishes its certificate (every authenticated user may
// read it) and may give its address, and its Service.
const (
	archiveCAConfigMap = "flow-ci-archive-ca"
	archiveCAKey       = "ca.crt"
	archiveURLKey      = "url"
	archiveService     = "flow-ci-archive"
	// archiveServiceEnv is the prefix of the variables Kubernetes sets in pods of the
	// Service's namespace (…_SERVICE_HOST, …_SERVICE_PORT): the in-cluster web view
	// reaches the archive by them, without cluster DNS.
	archiveServiceEnv = "FLOW_CI_ARCHIVE_SERVICE_"
)

// archiveFlags say where the run archive is and which certificates verify it.
type archiveFlags struct {
	url, namespace, caFile string
}

func (a *archiveFlags) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&a.url, "archive-url", os.Getenv("FLOWCI_ARCHIVE_URL"),
		"The run archive's address, https://host[:port] (env FLOWCI_ARCHIVE_URL; default: the url key of ConfigMap "+archiveCAConfigMap+", if it has one).")
	fs.StringVar(&a.namespace, "archive-namespace", "flow-ci-system", "The namespace of the run archive and of its ConfigMap "+archiveCAConfigMap+".")
	fs.StringVar(&a.caFile, "archive-ca-file", "", "Certificates (PEM) that verify the archive (default: "+archiveCAKey+" of ConfigMap "+archiveCAConfigMap+", read through the API server).")
}

// errArchiveNotConfigured: no address of the archive is known.
var errArchiveNotConfigured = errors.New("the run archive is not configured")

// notConfigured says how to configure the archive.
func (a *archiveFlags) notConfigured() error {
	return fmt.Errorf("%w: give its address with --archive-url (or FLOWCI_ARCHIVE_URL), or have it added as %q to ConfigMap %s in namespace %s (--archive-namespace)",
		errArchiveNotConfigured, archiveURLKey, archiveCAConfigMap, a.namespace)
}

// archiveTarget is how to reach the archive: its address, the certificates that
// verify it, and the name its certificate must hold when the address is an IP.
type archiveTarget struct {
	url        string
	ca         []byte
	serverName string
}

// target finds the archive: its address from --archive-url (FLOWCI_ARCHIVE_URL), else
// from inCluster (the web view's Service variables), else from the ConfigMap's url;
// its certificates from --archive-ca-file, else from the ConfigMap, read with cs.
func (a *archiveFlags) target(ctx context.Context, cs kubernetes.Interface, inCluster bool) (archiveTarget, error) {
	t := archiveTarget{url: a.url}
	if t.url == "" && inCluster {
		t.url, t.serverName = serviceURL(os.Getenv, a.namespace)
	}
	var cm *corev1.ConfigMap
	var cmErr error
	if t.url == "" || a.caFile == "" {
		cm, cmErr = cs.CoreV1().ConfigMaps(a.namespace).Get(ctx, archiveCAConfigMap, metav1.GetOptions{})
	}
	if t.url == "" && cmErr == nil {
		t.url = strings.TrimSpace(cm.Data[archiveURLKey])
	}
	switch {
	case t.url == "" && cmErr != nil && !apierrors.IsNotFound(cmErr) && !apierrors.IsForbidden(cmErr):
		return t, fmt.Errorf("looking for the run archive in ConfigMap %s/%s: %w", a.namespace, archiveCAConfigMap, cmErr)
	case t.url == "":
		return t, a.notConfigured()
	case a.caFile != "":
		ca, err := os.ReadFile(filepath.Clean(a.caFile))
		if err != nil {
			return t, fmt.Errorf("--archive-ca-file: %w", err)
		}
		t.ca = ca
	case cmErr != nil:
		return t, fmt.Errorf("reading the run archive's certificate from ConfigMap %s/%s (or give --archive-ca-file): %w",
			a.namespace, archiveCAConfigMap, cmErr)
	default:
		t.ca = []byte(cm.Data[archiveCAKey])
	}
	return t, nil
}

// serviceURL is the archive's address from the variables Kubernetes sets for its
// Service in pods of its namespace, and the Service's name its certificate holds;
// "" when they are not set (the Service did not exist when the pod started).
func serviceURL(getenv func(string) string, namespace string) (url, serverName string) {
	host, port := getenv(archiveServiceEnv+"HOST"), getenv(archiveServiceEnv+"PORT")
	if host == "" || port == "" {
		return "", ""
	}
	return "https://" + net.JoinHostPort(host, port), archiveService + "." + namespace + ".svc"
}

// archiveHTTP is an HTTP client of the archive: it trusts only t's certificates,
// follows no redirect (a token is never sent on to another address), and, with a
// kubeconfig's cfg, authenticates each request as its user with client-go's own
// wrappers (token, token file, exec plugin, auth provider). Without cfg it carries no
// identity: each request brings its reader's token (the in-cluster web view).
func archiveHTTP(t archiveTarget, cfg *rest.Config) (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(t.ca) {
		return nil, errors.New("no PEM certificate to verify the run archive with (ConfigMap " + archiveCAConfigMap + " or --archive-ca-file)")
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, ServerName: t.serverName},
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
	}
	var rt http.RoundTripper = tr
	if cfg != nil {
		if err := bearerCredentials(cfg); err != nil {
			return nil, err
		}
		var err error
		if rt, err = rest.HTTPWrappersForConfig(cfg, tr); err != nil {
			return nil, fmt.Errorf("your kubeconfig's credentials: %w", err)
		}
	}
	return &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, nil
}

// errClientCertificate: the archive checks bearer tokens (TokenReview); a client
// certificate proves who you are to the API server's TLS only, so it cannot reach the
// archive as an identity.
var errClientCertificate = errors.New("your kubeconfig authenticates with a client certificate, which the run archive cannot check: " +
	"it accepts Kubernetes bearer tokens only. Use a context with a token, a token file, an exec plugin or an auth provider " +
	"(your cloud's or OIDC login plugin, or a token from `kubectl create token`)")

// bearerCredentials accepts a kubeconfig whose requests carry a bearer token, the
// only credential the archive checks.
func bearerCredentials(cfg *rest.Config) error {
	imp := cfg.Impersonate
	switch {
	case imp.UserName != "" || imp.UID != "" || len(imp.Groups) > 0 || len(imp.Extra) > 0:
		// The archive reads as the token's user and would ignore the request to act
		// as another: refuse rather than show what the impersonated user may not see.
		return errors.New("the run archive does not act on impersonation (--as, --as-group): it reads as your own user; drop them to read the archive")
	case cfg.BearerToken != "" || cfg.BearerTokenFile != "" || cfg.ExecProvider != nil || cfg.AuthProvider != nil:
		return nil
	case len(cfg.CertData) > 0 || cfg.CertFile != "":
		return errClientCertificate
	}
	return errors.New("your kubeconfig has no credentials the run archive can check: it needs a Kubernetes bearer token (a token, a token file, an exec plugin or an auth provider)")
}

// archiveAccess reaches the archive as the kubeconfig's user. It is found on first
// use, so a command that never needs the archive never looks for it.
type archiveAccess struct {
	flags *archiveFlags
	cfg   *rest.Config
	cs    kubernetes.Interface

	once sync.Once
	c    *archiveclient.Client
	err  error
}

// client is the archive's client, or errArchiveNotConfigured (wrapped) when no
// address is known; a nil archiveAccess (clients made without flags) has none.
func (a *archiveAccess) client(ctx context.Context) (*archiveclient.Client, error) {
	if a == nil {
		return nil, errArchiveNotConfigured
	}
	a.once.Do(func() {
		t, err := a.flags.target(ctx, a.cs, false)
		if err != nil {
			a.err = err
			return
		}
		hc, err := archiveHTTP(t, a.cfg)
		if err != nil {
			a.err = fmt.Errorf("reading the run archive at %s: %w", t.url, err)
			return
		}
		a.c = archiveclient.New(t.url, "", hc)
	})
	return a.c, a.err
}
