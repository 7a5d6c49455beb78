package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers/access"
	"github.com/flow-ci/flow-ci/internal/archive"
	"github.com/flow-ci/flow-ci/internal/archive/api"
	"github.com/flow-ci/flow-ci/internal/archive/runrecord"
	"github.com/flow-ci/flow-ci/internal/archive/sqlstore"
	"github.com/flow-ci/flow-ci/internal/gittest"
)

// What a reader of runs needs in the cluster for `flowci logs` (the run, its Jobs and
// pods, their logs); the archive asks for the same of its readers.
var (
	readJobsPods = rbacv1.PolicyRule{APIGroups: []string{"", "batch"}, Resources: []string{"pods", "jobs"}, Verbs: []string{"get", "list", "watch"}}
	cliReader    = []rbacv1.PolicyRule{readRuns, readLogs, readJobsPods}
)

// testArchive is the run archive as it runs in a cluster: its read API (api.New,
// authorizing each reader with real TokenReviews and SubjectAccessReviews) over TLS,
// with a real embedded store, and its certificate published in ConfigMap
// flow-ci-archive-ca of its own namespace, readable by every authenticated user.
type testArchive struct {
	store archive.Store
	srv   *httptest.Server
	ns    string // the archive's namespace (--archive-namespace)
	caPEM []byte
}

// newTestArchive starts the archive; withURL also puts its address in the ConfigMap,
// as an admin would for readers outside the cluster.
func newTestArchive(t *testing.T, withURL bool) *testArchive {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.OpenEmbedded(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	a := &testArchive{store: st, ns: env.NewNamespace(t)}
	cert, caPEM := serviceCertificate(t, archiveService+"."+a.ns+".svc")
	a.caPEM = caPEM
	a.srv = httptest.NewUnstartedServer(api.New(api.Options{Store: st, Access: access.New(cs)}))
	a.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	a.srv.StartTLS()
	t.Cleanup(a.srv.Close)
	srv := a.srv
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: archiveCAConfigMap},
		Data: map[string]string{archiveCAKey: string(a.caPEM)}}
	if withURL {
		cm.Data[archiveURLKey] = srv.URL
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "archive-ca-reader"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"},
			ResourceNames: []string{archiveCAConfigMap}, Verbs: []string{"get"}}}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "archive-ca-reader"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: "system:authenticated"}}}
	for _, o := range []client.Object{cm, role, binding} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

// serviceCertificate is a self-signed certificate for the archive's Service name and
// loopback, as `flow-ci archive` makes one, and its PEM.
func serviceCertificate(t *testing.T, name string) (tls.Certificate, []byte) {
	t.Helper()
	certPEM, keyPEM := gittest.SelfSignedPEM(t, name)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert, certPEM
}

// storedLog is one log to store: its stream, bytes and final state.
type storedLog struct {
	stream string
	bytes  []byte
	state  archive.LogState
}

// put stores the logs of the run with uid in ns, in chunks of 64 KiB.
func (a *testArchive) put(t *testing.T, ns, uid string, logs ...storedLog) {
	t.Helper()
	for _, l := range logs {
		key := archive.StreamKey{UID: uid, Namespace: ns, Stream: l.stream}
		rest := l.bytes
		for first := true; first || len(rest) > 0; first = false {
			chunk := rest[:min(len(rest), 64<<10)]
			rest = rest[len(chunk):]
			next := archive.LogState{}
			if len(rest) == 0 {
				next = l.state
			}
			if _, err := a.store.Append(context.Background(), key, chunk, next); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// record stores run's record as the archive makes it when the run ends, with the
// logs stored for it so far.
func (a *testArchive) record(t *testing.T, run *v1alpha1.PipelineRun, file string, events ...corev1.Event) {
	t.Helper()
	ctx := context.Background()
	streams, err := a.store.Streams(ctx, string(run.UID))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := runrecord.New(run, file, events, streams, time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.store.PutRecord(ctx, rec); err != nil {
		t.Fatal(err)
	}
}

// kubeconfig writes a kubeconfig of the test API server for user, and returns its path.
func kubeconfig(t *testing.T, user *clientcmdapi.AuthInfo) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["envtest"] = &clientcmdapi.Cluster{Server: env.Config.Host, CertificateAuthorityData: env.Config.CAData}
	cfg.AuthInfos["user"] = user
	cfg.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "user"}
	cfg.CurrentContext = "envtest"
	path := filepath.Join(t.TempDir(), "config")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// execCredential is a kubeconfig user whose token comes from an exec plugin, as a
// cloud's or an OIDC login plugin gives it.
func execCredential(token string) *clientcmdapi.AuthInfo {
	out := fmt.Sprintf(`{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":%q}}`, token)
	return &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{APIVersion: "client.authentication.k8s.io/v1",
		Command: "sh", Args: []string{"-c", "printf '%s' '" + out + "'"}, InteractiveMode: clientcmdapi.NeverExecInteractiveMode}}
}

// lockedBuffer is a buffer the CLI writes from several goroutines while a test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runCLI runs flowci in-process with kubeconfig and the archive's namespace, and
// returns its exit code, output and errors.
func runCLI(kubeconfig, archiveNS string, args ...string) (code int, out, errOut string) {
	var o, e lockedBuffer
	code = runCLIInto(&o, &e, kubeconfig, archiveNS, args...)
	return code, o.String(), e.String()
}

func runCLIInto(out, errOut *lockedBuffer, kubeconfig, archiveNS string, args ...string) int {
	full := append([]string{"flowci", "--kubeconfig", kubeconfig, "--archive-namespace", archiveNS}, args...)
	return run(full, genericclioptions.IOStreams{In: strings.NewReader(""), Out: out, ErrOut: errOut})
}
