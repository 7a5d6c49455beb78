package controllers

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
)

// installPolicy applies a policy of config/policy as shipped (once per suite).
func installPolicy(t *testing.T, file string) {
	t.Helper()
	f, err := os.Open("../config/policy/" + file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	policy, binding := &admissionv1.ValidatingAdmissionPolicy{}, &admissionv1.ValidatingAdmissionPolicyBinding{}
	if err := dec.Decode(policy); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(binding); err != nil {
		t.Fatal(err)
	}
	for _, o := range []client.Object{policy, binding} {
		if err := env.Client.Create(context.Background(), o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
}

// creator is an envtest user who may create PipelineRuns in ns, plus extra rules.
func creator(t *testing.T, ns, name string, extra ...rbacv1.PolicyRule) client.Client {
	t.Helper()
	rules := append([]rbacv1.PolicyRule{{APIGroups: []string{civ1alpha1.GroupVersion.Group},
		Resources: []string{"pipelineruns", "pipelinetriggers"}, Verbs: []string{"create", "get", "update", "patch"}}}, extra...)
	return userWith(t, ns, name, rules...)
}

// userWith is a real user of the test API server (a client certificate), bound in ns
// to a Role with exactly rules.
func userWith(t *testing.T, ns, name string, rules ...rbacv1.PolicyRule) client.Client {
	t.Helper()
	ctx := context.Background()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Rules: rules}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}}}
	for _, o := range []client.Object{role, binding} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	u, err := env.AddUser(envtest.User{Name: name}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(u.Config(), client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAdmissionPolicy: a run creator may use only the Secrets and ServiceAccounts they
// could use themselves.
func TestAdmissionPolicy(t *testing.T) {
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	installPolicy(t, "pipelinerun_references.yaml")
	plain := creator(t, ns, "runs-only")
	reader := creator(t, ns, "secret-reader", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"creds"}, Verbs: []string{"get"}})
	podMaker := creator(t, ns, "pod-maker", rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create"}})
	n := 0
	create := func(c client.Client, mutate func(*civ1alpha1.PipelineRunSpec)) error {
		n++
		run := validRun(ns, "adm-"+strings.Repeat("x", n))
		mutate(&run.Spec)
		return c.Create(context.Background(), run)
	}
	withSecret := func(s *civ1alpha1.PipelineRunSpec) { s.GitSecretRef = &civ1alpha1.SecretReference{Name: "creds"} }
	withSA := func(s *civ1alpha1.PipelineRunSpec) { s.ServiceAccountName = "deployer" }

	// The policy takes a moment to become active.
	g.Eventually(func() error { return create(plain, withSecret) }).WithTimeout(30 * time.Second).WithPolling(time.Second).
		Should(MatchError(ContainSubstring(`you may not get Secret "creds"`)))
	g.Expect(create(plain, func(*civ1alpha1.PipelineRunSpec) {})).To(Succeed(), "a run without references")
	g.Expect(create(reader, withSecret)).To(Succeed(), "the creator may read the Secret")
	g.Expect(create(reader, func(s *civ1alpha1.PipelineRunSpec) { s.GitSecretRef = &civ1alpha1.SecretReference{Name: "other"} })).
		To(MatchError(ContainSubstring(`you may not get Secret "other"`)))
	g.Expect(create(plain, withSA)).To(MatchError(ContainSubstring("may not run steps as ServiceAccount")))
	g.Expect(create(podMaker, withSA)).To(Succeed(), "the creator may create pods, so may use the namespace's ServiceAccounts")
	// spec.resumeFrom mounts what another run left: the right to create pods, like a ServiceAccount.
	resuming := func(s *civ1alpha1.PipelineRunSpec) { s.ResumeFrom = &civ1alpha1.ResumeSource{Run: "failed"} }
	g.Expect(create(plain, resuming)).To(MatchError(ContainSubstring(`may not take over the workspace of run "failed"`)))
	g.Expect(create(podMaker, resuming)).To(Succeed())

	// spec.secrets: every Secret listed needs get, and the message names the refused one.
	exposing := func(names ...string) func(*civ1alpha1.PipelineRunSpec) {
		return func(s *civ1alpha1.PipelineRunSpec) {
			for _, n := range names {
				s.Secrets = append(s.Secrets, civ1alpha1.RunSecret{Name: n})
			}
		}
	}
	g.Expect(create(plain, exposing("creds"))).To(MatchError(ContainSubstring(`spec.secrets[0]: you may not get Secret "creds"`)))
	g.Expect(create(reader, exposing("creds"))).To(Succeed(), "the creator may read the Secret")
	g.Expect(create(reader, exposing("creds", "deploy-token"))).
		To(MatchError(ContainSubstring(`spec.secrets[1]: you may not get Secret "deploy-token"`)), "one readable Secret does not lend another")
	// The list is immutable: a run admitted with one Secret cannot be given another.
	run := validRun(ns, "adm-immutable")
	exposing("creds")(&run.Spec)
	g.Expect(reader.Create(context.Background(), run)).To(Succeed())
	run.Spec.Secrets = append(run.Spec.Secrets, civ1alpha1.RunSecret{Name: "deploy-token"})
	g.Expect(env.Client.Update(context.Background(), run)).To(MatchError(ContainSubstring("secrets is immutable")))
	// So is resumeFrom: a run admitted without it cannot be made to take a workspace.
	g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(run), run)).To(Succeed())
	run.Spec.ResumeFrom = &civ1alpha1.ResumeSource{Run: "failed"}
	g.Expect(env.Client.Update(context.Background(), run)).To(MatchError(ContainSubstring("resumeFrom is immutable")))
}
