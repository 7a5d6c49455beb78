package access_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/flow-ci/flow-ci/controllers/access"
	"github.com/flow-ci/flow-ci/internal/archive"
	"github.com/flow-ci/flow-ci/internal/archive/api"
	"github.com/flow-ci/flow-ci/internal/archive/client"
	"github.com/flow-ci/flow-ci/internal/archive/sqlstore"
)

var (
	readRuns = rbacv1.PolicyRule{APIGroups: []string{"ci.flowci.dev"}, Resources: []string{"pipelineruns"}, Verbs: []string{"get", "list"}}
	readLogs = rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}}
)

// reviewer is a client of a user who may create TokenReviews and SubjectAccessReviews
// and nothing else: all the archive's read API needs of the cluster.
func reviewer(t *testing.T) kubernetes.Interface {
	t.Helper()
	ctx := context.Background()
	const name = "flowci-archive-reviewer"
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
		{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
	}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}}}
	if err := env.Client.Create(ctx, role); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, binding); err != nil {
		t.Fatal(err)
	}
	u, err := env.AddUser(envtest.User{Name: name}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(u.Config())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// TestArchiveReadersAgainstRBAC: the archive's read API, with Kube checking each
// reader's real token and real RBAC, serves a reader of pipelineruns the record but not
// the logs, nothing of another namespace, and a reader of pods/log the log byte for
// byte; an invalid token is 401.
func TestArchiveReadersAgainstRBAC(t *testing.T) {
	ctx := context.Background()
	nsA, nsB := env.NewNamespace(t), env.NewNamespace(t)
	store, err := sqlstore.OpenEmbedded(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	log := append([]byte("\x00\xff binary \r\n"), bytes.Repeat([]byte{0xc3, 0x28, '\n'}, 1000)...)
	for _, ns := range []string{nsA, nsB} {
		uid := "uid-" + ns
		if err := store.PutRecord(ctx, archive.Record{UID: uid, Namespace: ns, Name: "build", Phase: "Succeeded",
			Created: time.Now(), Doc: []byte(`{"ns":"` + ns + `"}`)}); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Append(ctx, archive.StreamKey{UID: uid, Namespace: ns, Stream: "step-0"}, log,
			archive.LogState{Done: true}); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(api.New(api.Options{Store: store, Access: access.New(reviewer(t))}))
	t.Cleanup(srv.Close)
	runs := client.New(srv.URL, env.ServiceAccountToken(t, nsA, "runs-reader", readRuns), nil)
	logs := client.New(srv.URL, env.ServiceAccountToken(t, nsA, "logs-reader", readLogs), nil)

	if run, err := runs.Get(ctx, nsA, "build"); err != nil || string(run.Record) != `{"ns":"`+nsA+`"}` {
		t.Errorf("the record in the reader's namespace: %s, %v", run.Record, err)
	}
	if items, _, err := runs.List(ctx, nsA, client.Filter{}); err != nil || len(items) != 1 || items[0].UID != "uid-"+nsA {
		t.Errorf("the list in the reader's namespace: %+v, %v", items, err)
	}
	wantStatus := func(what string, err error, status int) {
		t.Helper()
		var e *client.Error
		if !errors.As(err, &e) || e.Status != status {
			t.Errorf("%s: %v, want %d", what, err, status)
		}
	}
	_, err = runs.Log(ctx, nsA, "build", "step-0", new(bytes.Buffer))
	wantStatus("a log without pods/log", err, http.StatusForbidden)
	_, err = runs.Get(ctx, nsB, "build")
	wantStatus("a record in another namespace", err, http.StatusForbidden)
	_, err = runs.Get(ctx, nsB, "nope")
	wantStatus("a missing record in another namespace", err, http.StatusForbidden)
	_, err = logs.Get(ctx, nsA, "build")
	wantStatus("a record with only pods/log", err, http.StatusForbidden)
	_, err = logs.Log(ctx, nsB, "build", "step-0", new(bytes.Buffer))
	wantStatus("a log in another namespace", err, http.StatusForbidden)
	_, _, err = client.New(srv.URL, "not-a-token", nil).List(ctx, nsA, client.Filter{})
	wantStatus("an invalid token", err, http.StatusUnauthorized)

	var got bytes.Buffer
	if info, err := logs.Log(ctx, nsA, "build", "step-0", &got); err != nil || !bytes.Equal(got.Bytes(), log) || !info.Done {
		t.Errorf("the log with pods/log: %d of %d bytes, %+v, %v", got.Len(), len(log), info, err)
	}
}
