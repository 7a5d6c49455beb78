package webview

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// User is who a token authenticates, as the API server says (TokenReview).
type User struct {
	Name   string
	UID    string
	Groups []string
	Extra  map[string][]string
}

// Attributes is one question for the authorizer: may the user do Verb on Resource
// (Subresource) in Namespace.
type Attributes struct {
	Namespace, Verb, Group, Resource, Subresource string
}

// Access is the API server's authentication and authorization, asked for the web
// view's readers: a TokenReview and SubjectAccessReviews in the cluster (cmd/flowci).
type Access interface {
	// Authenticate returns the user of a bearer token, or ErrUnauthenticated.
	Authenticate(ctx context.Context, token string) (User, error)
	// Authorize says whether u may do what a asks.
	Authorize(ctx context.Context, u User, a Attributes) (bool, error)
}

// ErrUnauthenticated: the token is not valid (expired, revoked, not a token).
var ErrUnauthenticated = errors.New("the token is not valid")

// ErrForbidden: the reader may not read what they asked for (a 403 page). An Archive
// returns it when the archive refuses the reader.
var ErrForbidden = errors.New("forbidden")

// cookieName holds a token a browser logged in with.
const cookieName = "flowci_token"

// maxToken bounds a token read from a request.
const maxToken = 8 << 10

type userKey struct{}

func withUser(ctx context.Context, u User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

func userOf(ctx context.Context) (User, bool) {
	u, ok := ctx.Value(userKey{}).(User)
	return u, ok
}

// tokenOf is the request's bearer token: an Authorization header (from an
// authenticating proxy, or a script), else the login cookie.
func tokenOf(r *http.Request) string {
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	if c, err := r.Cookie(cookieName); err == nil {
		return c.Value
	}
	return ""
}

// authenticate returns the request's user.
func (s *Server) authenticate(r *http.Request) (User, error) {
	token := tokenOf(r)
	if token == "" {
		return User{}, fmt.Errorf("%w: no token", ErrUnauthenticated)
	}
	if len(token) > maxToken {
		return User{}, fmt.Errorf("%w: the token is too long", ErrUnauthenticated)
	}
	return s.opts.Access.Authenticate(r.Context(), token)
}

// unauthenticated answers 401: the login page for a browser's page, a short text for
// a log stream or a badge.
func (s *Server) unauthenticated(w http.ResponseWriter, r *http.Request, err error) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="flow-ci"`)
	if !errors.Is(err, ErrUnauthenticated) {
		http.Error(w, "the cluster could not check the token", http.StatusBadGateway)
		return
	}
	if strings.HasSuffix(r.URL.Path, "/log") || strings.HasPrefix(r.URL.Path, "/badge/") || r.Method != http.MethodGet {
		http.Error(w, "401: sign in with a Kubernetes token", http.StatusUnauthorized)
		return
	}
	s.render(w, http.StatusUnauthorized, "login.html", map[string]any{"Next": r.URL.RequestURI()})
}

// can says whether the request's user may do verb on resource in namespace: always on
// a laptop (the API server checks the user's own credentials), else the authorizer's
// answer. A namespace of "" asks about every namespace.
func (s *Server) can(r *http.Request, namespace, verb, resource, subresource string) (bool, error) {
	if s.opts.Access == nil {
		return true, nil
	}
	u, ok := userOf(r.Context())
	if !ok {
		return false, nil
	}
	return s.opts.Access.Authorize(r.Context(), u, Attributes{Namespace: namespace, Verb: verb,
		Group: groupOf(resource), Resource: resource, Subresource: subresource})
}

// need fails with ErrForbidden unless can.
func (s *Server) need(r *http.Request, namespace, verb, resource, subresource string) error {
	ok, err := s.can(r, namespace, verb, resource, subresource)
	switch {
	case err != nil:
		return err
	case !ok:
		what := resource
		if subresource != "" {
			what += "/" + subresource
		}
		return fmt.Errorf("%w: you may not %s %s in namespace %s", ErrForbidden, verb, what, namespace)
	}
	return nil
}

func groupOf(resource string) string {
	if resource == "pipelineruns" || resource == "pipelinetriggers" {
		return "ci.flowci.dev"
	}
	return ""
}

// loginPage asks for a token.
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusOK, "login.html", map[string]any{"Next": safeNext(r.URL.Query().Get("next"))})
}

// login checks a token and keeps it in an HttpOnly, SameSite=Strict cookie, so no
// script and no other site's request can use it. The form must come from this site.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if s.opts.Access == nil {
		http.Redirect(w, r, "/runs", http.StatusSeeOther)
		return
	}
	if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r) {
		http.Error(w, "403: the sign-in form must come from this site", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 2*maxToken)
	token := strings.TrimSpace(r.PostFormValue("token"))
	if token == "" || len(token) > maxToken {
		s.render(w, http.StatusUnauthorized, "login.html", map[string]any{"Error": "Paste a Kubernetes token."})
		return
	}
	if _, err := s.opts.Access.Authenticate(r.Context(), token); err != nil {
		s.render(w, http.StatusUnauthorized, "login.html", map[string]any{"Error": "The cluster did not accept this token."})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https", MaxAge: int((8 * time.Hour).Seconds())})
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

// logout forgets the cookie.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext is a local path to go to after signing in; anything else is /runs.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return "/runs"
	}
	return next
}

func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// Caching: the API server's answers are kept for a few seconds, so a page's fragment
// refreshes and a list's namespaces do not each cost a review.
const (
	decisionTTL  = 5 * time.Second
	maxDecisions = 10_000
)

// cachedAccess remembers Access's answers for ttl, at most max of each kind; a full
// cache is emptied rather than grown.
type cachedAccess struct {
	next  Access
	users *ttlCache[User]
	rules *ttlCache[bool]
}

// CachedAccess is a with its answers kept as the web view keeps them (decisionTTL, at
// most maxDecisions of each kind), for the other servers that authorize their readers
// with the API server (the run archive).
func CachedAccess(a Access) Access { return cached(a, decisionTTL, maxDecisions) }

func cached(a Access, ttl time.Duration, max int) Access {
	return &cachedAccess{next: a, users: newTTLCache[User](ttl, max), rules: newTTLCache[bool](ttl, max)}
}

func (c *cachedAccess) Authenticate(ctx context.Context, token string) (User, error) {
	sum := sha256.Sum256([]byte(token)) // the cache never holds a token
	key := string(sum[:])
	if u, ok := c.users.get(key); ok {
		return u, nil
	}
	u, err := c.next.Authenticate(ctx, token)
	if err == nil {
		c.users.put(key, u)
	}
	return u, err
}

func (c *cachedAccess) Authorize(ctx context.Context, u User, a Attributes) (bool, error) {
	key := fmt.Sprintf("%s\x00%s\x00%q\x00%v\x00%+v", u.Name, u.UID, u.Groups, u.Extra, a)
	if ok, hit := c.rules.get(key); hit {
		return ok, nil
	}
	ok, err := c.next.Authorize(ctx, u, a)
	if err == nil {
		c.rules.put(key, ok)
	}
	return ok, err
}
