// Package access is the API server's authentication and authorization for flow-ci's
// servers that serve readers in the cluster (the web view, the run archive): who a
// bearer token is (TokenReview) and what they may do (SubjectAccessReview). The
// servers take it as webview.Access and never build a client themselves.
package access

import (
	"context"
	"fmt"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/flow-ci/flow-ci/internal/webview"
)

// Kube implements webview.Access with the API server. Its client's identity needs
// create on tokenreviews and subjectaccessreviews (config/ui).
type Kube struct {
	CS kubernetes.Interface
}

// New returns the Access of the cluster cs talks to.
func New(cs kubernetes.Interface) Kube { return Kube{CS: cs} }

var _ webview.Access = Kube{}

// Authenticate returns the user of token, or webview.ErrUnauthenticated when the API
// server does not accept it; any other error means the review itself failed.
func (a Kube) Authenticate(ctx context.Context, token string) (webview.User, error) {
	tr, err := a.CS.AuthenticationV1().TokenReviews().Create(ctx,
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

// Authorize asks whether u may do what attrs says, with u's groups and extra
// attributes, as the API server would decide for u's own request.
func (a Kube) Authorize(ctx context.Context, u webview.User, attrs webview.Attributes) (bool, error) {
	extra := map[string]authorizationv1.ExtraValue{}
	for k, v := range u.Extra {
		extra[k] = v
	}
	sar, err := a.CS.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
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
