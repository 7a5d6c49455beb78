package controllers

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	. "github.com/onsi/gomega"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestFlowControlMatchesTheOperator: config/default ships a FlowSchema and a priority
// level that the API server accepts as they are, the schema names the ServiceAccount the
// operator's Deployment runs as and the rendered priority level, and the server then
// classifies that ServiceAccount's requests into them instead of the built-in
// service-accounts schema (workload-low).
func TestFlowControlMatchesTheOperator(t *testing.T) {
	ctx := context.Background()
	objs := kustomize(t, "default")
	fsObj, plObj, deploy := find(objs, "FlowSchema"), find(objs, "PriorityLevelConfiguration"), find(objs, "Deployment")
	if fsObj == nil || plObj == nil || deploy == nil {
		t.Fatal("config/default lacks the FlowSchema, the PriorityLevelConfiguration or the operator")
	}
	fs, pl := &flowcontrolv1.FlowSchema{}, &flowcontrolv1.PriorityLevelConfiguration{}
	fromRendered(t, fsObj, fs)
	fromRendered(t, plObj, pl)

	saName, _, _ := unstructured.NestedString(deploy.Object, "spec", "template", "spec", "serviceAccountName")
	if sa := findNamed(objs, "ServiceAccount", deploy.GetNamespace(), saName); sa == nil {
		t.Fatalf("the operator runs as ServiceAccount %s/%s, which config/default does not create", deploy.GetNamespace(), saName)
	}
	want := []flowcontrolv1.Subject{{Kind: flowcontrolv1.SubjectKindServiceAccount,
		ServiceAccount: &flowcontrolv1.ServiceAccountSubject{Namespace: deploy.GetNamespace(), Name: saName}}}
	if len(fs.Spec.Rules) != 1 {
		t.Fatalf("the FlowSchema has %d rules, want one for the operator", len(fs.Spec.Rules))
	}
	if diff := cmp.Diff(want, fs.Spec.Rules[0].Subjects); diff != "" {
		t.Errorf("the FlowSchema's subjects are not the operator's ServiceAccount (-want +got):\n%s", diff)
	}
	if fs.Spec.PriorityLevelConfiguration.Name != pl.Name {
		t.Errorf("the FlowSchema refers to priority level %q, config/default renders %q", fs.Spec.PriorityLevelConfiguration.Name, pl.Name)
	}
	// After every built-in system schema (the last, kube-system-service-accounts, is 900)
	// and ahead of service-accounts (9000), which would put the operator in workload-low.
	if p := fs.Spec.MatchingPrecedence; p <= 1000 || p >= 9000 {
		t.Errorf("matchingPrecedence %d, want between 1000 and 9000", p)
	}

	for _, o := range []client.Object{pl, fs} {
		if err := env.Client.Create(ctx, o, client.FieldValidation("Strict")); err != nil {
			t.Fatalf("the API server refuses %s %s: %v", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
		}
		t.Cleanup(func() {
			if err := env.Client.Delete(context.Background(), o); err != nil && !apierrors.IsNotFound(err) {
				t.Error(err)
			}
		})
	}
	assertClassified(t, deploy.GetNamespace(), saName, fs, pl)
}

// assertClassified makes requests as the ServiceAccount ns/name and waits until the API
// server's flow control (which picks up new schemas asynchronously) reports, in its
// response headers, that it matched fs and pl: a namespaced request and a cluster-wide
// one, as the operator's writes and its informers' lists make. The ServiceAccount may do
// nothing here; classification comes before authorization, so its 403 carries the headers.
func assertClassified(t *testing.T, ns, name string, fs *flowcontrolv1.FlowSchema, pl *flowcontrolv1.PriorityLevelConfiguration) {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	// The user and groups a token of that ServiceAccount authenticates as.
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":" + name,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/apis/batch/v1/namespaces/" + env.NewNamespace(t) + "/jobs", "/apis/ci.flowci.dev/v1alpha1/pipelineruns"} {
		NewWithT(t).Eventually(func(g Gomega) {
			resp, err := hc.Get(cfg.Host + path)
			g.Expect(err).NotTo(HaveOccurred())
			resp.Body.Close()
			g.Expect(resp.Header.Get(flowcontrolv1.ResponseHeaderMatchedFlowSchemaUID)).To(Equal(string(fs.UID)), "FlowSchema of GET %s", path)
			g.Expect(resp.Header.Get(flowcontrolv1.ResponseHeaderMatchedPriorityLevelConfigurationUID)).To(Equal(string(pl.UID)), "priority level of GET %s", path)
		}).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
	}
}

// fromRendered converts a rendered object into its Go type, refusing fields the type
// does not have (a misspelt field would otherwise be dropped without a word).
func fromRendered(t *testing.T, u *unstructured.Unstructured, into k8sruntime.Object) {
	t.Helper()
	if err := k8sruntime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, into, true); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
}

func findNamed(objs []*unstructured.Unstructured, kind, ns, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetNamespace() == ns && o.GetName() == name {
			return o
		}
	}
	return nil
}
