package controllers

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers/sources"
)

// TestSecretReads: the one reader of Secrets for repositories returns typed errors: not
// found, not allowed for the repository, malformed; the same for git Secrets and forge
// tokens.
func TestSecretReads(t *testing.T) {
	ctx := context.Background()
	ns := env.NewNamespace(t)
	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: "git"}, StringData: map[string]string{"username": "u", "password": "p"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "fenced", Annotations: map[string]string{v1alpha1.AnnotationAllowedRepositories: "github.com/org/*"}},
			StringData: map[string]string{"username": "u", "password": "p", sources.TokenKey: "t"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "ssh-without-hosts"}, StringData: map[string]string{"identity": "x"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "no-token"}, StringData: map[string]string{"other": "x"}},
	} {
		s.Namespace = ns
		if err := env.Client.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	r := sources.Secrets{Reader: env.Client}
	ref := func(n string) *v1alpha1.SecretReference { return &v1alpha1.SecretReference{Name: n} }
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"git", second(r.GitAuth(ctx, ns, ref("git"), "https://git.example/a.git")), nil},
		{"allowed", second(r.GitAuth(ctx, ns, ref("fenced"), "https://github.com/org/app.git")), nil},
		{"not allowed", second(r.GitAuth(ctx, ns, ref("fenced"), "https://evil.example/app.git")), sources.ErrNotAllowed},
		{"missing", second(r.GitAuth(ctx, ns, ref("absent"), "https://git.example/a.git")), sources.ErrSecretNotFound},
		{"malformed", second(r.GitAuth(ctx, ns, ref("ssh-without-hosts"), "ssh://git@git.example/a.git")), sources.ErrMalformed},
		{"token", tokenErr(r.Token(ctx, ns, "fenced", "https://github.com/org/app.git")), nil},
		{"token not allowed", tokenErr(r.Token(ctx, ns, "fenced", "https://evil.example/app.git")), sources.ErrNotAllowed},
		{"no token", tokenErr(r.Token(ctx, ns, "no-token", "https://git.example/a.git")), sources.ErrMalformed},
		{"token missing", tokenErr(r.Token(ctx, ns, "absent", "https://git.example/a.git")), sources.ErrSecretNotFound},
	} {
		if (tc.want == nil) != (tc.err == nil) || tc.want != nil && !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
}

func second[A, B any](_ A, _ B, err error) error { return err }

func tokenErr(_ string, err error) error { return err }
