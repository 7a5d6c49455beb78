package main

import (
	"context"
	"fmt"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/flow-ci/flow-ci/internal/webview"
)

// kubeAccess asks the API server who a token is (TokenReview) and what they may do
// (SubjectAccessReview), for the in-cluster web view. Its ServiceAccount needs create on
// tokenreviews and subjectaccessreviews (config/ui).
type kubeAccess struct {
	cs kubernetes.Interface
}

func (a kubeAccess) Authenticate(ctx context.Context, token string) (webview.User, error) {
	tr, err := a.cs.AuthenticationV1().TokenReviews().Create(ctx,
		&authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil {
		return webview.User{}, fmt.Errorf("reviewing the token: %w", err)
	}
	if !tr.Status.Authenticated {
		return webview.User{}, webview.ErrUnauthenticated
	}
	u := tr.Status.User
	extra := map[string][]string{}
	for k, v := range u.Extra {
		extra[k] = v
	}
	return webview.User{Name: u.Username, UID: u.UID, Groups: u.Groups, Extra: extra}, nil
}

func (a kubeAccess) Authorize(ctx context.Context, u webview.User, attrs webview.Attributes) (bool, error) {
	extra := map[string]authorizationv1.ExtraValue{}
	for k, v := range u.Extra {
		extra[k] = v
	}
	sar, err := a.cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User: u.Name, UID: u.UID, Groups: u.Groups, Extra: extra,
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: attrs.Namespace, Verb: attrs.Verb,
				Group: attrs.Group, Resource: attrs.Resource, Subresource: attrs.Subresource},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, fmt.Errorf("reviewing access: %w", err)
	}
	return sar.Status.Allowed, nil
}
