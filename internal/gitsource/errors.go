package gitsource

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/flow-ci/flow-ci/internal/shorten"
)

// Sentinel errors, usable with errors.Is. Every error this package returns
// wraps at most one of them; IsPermanent says which ones a retry cannot fix.
var (
	ErrInvalidURL           = errors.New("invalid repository url")
	ErrInvalidBranch        = errors.New("invalid branch name")
	ErrInvalidRevision      = errors.New("invalid revision")
	ErrInvalidPath          = errors.New("invalid file path")
	ErrInvalidAuth          = errors.New("invalid git credentials")
	ErrRepositoryNotFound   = errors.New("repository not found")
	ErrAuthenticationFailed = errors.New("authentication failed")
	ErrHostKeyMismatch      = errors.New("ssh host key verification failed")
	ErrTLSVerification      = errors.New("tls certificate verification failed")
	ErrEmptyRepository      = errors.New("repository is empty")
	ErrBranchNotFound       = errors.New("branch not found")
	ErrRevisionNotServed    = errors.New("revision not served")
	ErrFileNotFound         = errors.New("file not found")
	ErrFileTooLarge         = errors.New("file too large")
	ErrTimeout              = errors.New("git operation timed out")
)

var permanent = []error{
	ErrInvalidURL, ErrInvalidBranch, ErrInvalidRevision, ErrInvalidPath,
	ErrInvalidAuth, ErrRepositoryNotFound, ErrAuthenticationFailed,
	ErrHostKeyMismatch, ErrTLSVerification, ErrEmptyRepository,
	ErrBranchNotFound, ErrRevisionNotServed, ErrFileNotFound, ErrFileTooLarge,
	ErrAddressNotAllowed, ErrTooLarge,
}

// IsPermanent reports whether err is a user or configuration error that
// retrying will not fix. Timeouts, network and unknown errors are transient.
func IsPermanent(err error) bool {
	for _, p := range permanent {
		if errors.Is(err, p) {
			return true
		}
	}
	return false
}

// maxDetail caps server-provided text (go-git copies whole HTTP error
// bodies into errors) so messages stay fit for a status condition.
const maxDetail = 300

var (
	userinfoRE = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://)[^/?#@\s]*@`)
	// basicRE is an Authorization header's credentials, as a server may echo them.
	basicRE = regexp.MustCompile(`(?i)(basic|bearer|token)\s+[A-Za-z0-9+/=._~-]{4,}`)
)

// sanitize makes text safe to surface: known secret values (also in their
// URL-escaped and base64 forms) become "***", as do Authorization header
// credentials, and userinfo is stripped from URLs.
func sanitize(text string, secrets []string) string {
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for _, form := range []string{s, url.PathEscape(s), url.QueryEscape(s), base64.StdEncoding.EncodeToString([]byte(s))} {
			text = strings.ReplaceAll(text, form, "***")
		}
	}
	text = basicRE.ReplaceAllString(text, "$1 ***")
	text = userinfoRE.ReplaceAllString(text, "$1")
	if len(text) > maxDetail {
		text = shorten.Head(text, maxDetail) + "..."
	}
	return text
}

// safeURL is repoURL without userinfo, for messages.
func safeURL(repoURL string) string {
	return userinfoRE.ReplaceAllString(repoURL, "$1")
}

// callState records what the per-call dialer and host key check saw, so
// errors are classified from facts rather than from go-git's error text.
type callState struct {
	blockedAddr error // a dial or redirect refused by the egress policy
	hostKeyErr  error // ssh host key rejected
	httpStatus  int   // the last non-2xx HTTP status
	overBudget  bool  // the call read more than its byte budget
	tooLarge    error // a bound of the ref advertisement was passed (our own text)
}

// classify turns an error from a go-git operation into one wrapping a
// sentinel. Its text is the operation, the URL without credentials and what
// this process observed (an HTTP status, a refused dial, a local network
// error); nothing a server sent reaches it, since a server's text may echo
// credentials or come from an internal service.
func classify(ctx context.Context, op, repoURL string, err error, st *callState, a *Auth) error {
	if err == nil {
		return nil
	}
	if st == nil {
		st = &callState{}
	}
	where := op + " " + safeURL(repoURL)
	secrets := a.secretValues()
	switch {
	case st.blockedAddr != nil:
		return fmt.Errorf("%s: %w", where, st.blockedAddr)
	case st.tooLarge != nil:
		return fmt.Errorf("%s: %w", where, st.tooLarge)
	case st.overBudget:
		return fmt.Errorf("%s: %w", where, ErrTooLarge)
	case errors.Is(err, ErrTooLarge), errors.Is(err, ErrAddressNotAllowed):
		return fmt.Errorf("%s: %w", where, err) // our own text
	case st.hostKeyErr != nil:
		return fmt.Errorf("%s: %w: %s", where, ErrHostKeyMismatch, sanitize(st.hostKeyErr.Error(), secrets))
	case strings.Contains(err.Error(), "no common algorithm for host key"):
		// The server has no host key of a type listed in known_hosts.
		return fmt.Errorf("%s: %w: the server offers no host key of a type in %s", where, ErrHostKeyMismatch, KeyKnownHosts)
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || isTimeout(err):
		return fmt.Errorf("%s: %w", where, ErrTimeout)
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", where, ctx.Err())
	case st.httpStatus == http.StatusUnauthorized || st.httpStatus == http.StatusForbidden:
		return fmt.Errorf("%s: %w: HTTP %d", where, ErrAuthenticationFailed, st.httpStatus)
	case st.httpStatus == http.StatusNotFound:
		return fmt.Errorf("%s: %w: HTTP %d", where, ErrRepositoryNotFound, st.httpStatus)
	case st.httpStatus != 0:
		return fmt.Errorf("%s: the server answered HTTP %d", where, st.httpStatus)
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return fmt.Errorf("%s: %w", where, ErrRepositoryNotFound)
	case errors.Is(err, transport.ErrAuthenticationRequired),
		errors.Is(err, transport.ErrAuthorizationFailed),
		errors.Is(err, transport.ErrInvalidAuthMethod),
		strings.Contains(err.Error(), "unable to authenticate"):
		return fmt.Errorf("%s: %w", where, ErrAuthenticationFailed)
	case errors.Is(err, transport.ErrEmptyRemoteRepository):
		return fmt.Errorf("%s: %w", where, ErrEmptyRepository)
	case hasCause[x509.UnknownAuthorityError](err), hasCause[x509.HostnameError](err),
		hasCause[x509.CertificateInvalidError](err):
		return fmt.Errorf("%s: %w: %s", where, ErrTLSVerification, sanitize(localDetail(err), secrets))
	}
	return fmt.Errorf("%s: %s", where, sanitize(localDetail(err), secrets))
}

// localDetail describes err by what this process saw: a network error (dial,
// TLS, reset), or a closed connection. Anything else came from the server's
// bytes and is summarised without them.
func localDetail(err error) string {
	var detail string
	causes(err, func(e error) bool {
		switch e := e.(type) {
		case *net.OpError, *net.DNSError, x509.UnknownAuthorityError, x509.HostnameError, x509.CertificateInvalidError:
			detail = e.Error()
			return true
		}
		if e == io.EOF || e == io.ErrUnexpectedEOF {
			detail = "the server closed the connection"
			return true
		}
		return false
	})
	if detail == "" {
		detail = "the server's answer is not a git response this client understands"
	}
	return detail
}

// causes walks err's chain, including go-git's wrappers that lack Unwrap.
func causes(err error, visit func(error) bool) bool {
	for err != nil {
		if visit(err) {
			return true
		}
		switch e := err.(type) {
		case *plumbing.UnexpectedError:
			err = e.Err
		case *plumbing.PermanentError:
			err = e.Err
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				if causes(inner, visit) {
					return true
				}
			}
			return false
		default:
			err = errors.Unwrap(err)
		}
	}
	return false
}

func hasCause[T error](err error) bool {
	return causes(err, func(e error) bool { _, ok := e.(T); return ok })
}

func isTimeout(err error) bool {
	return causes(err, func(e error) bool {
		if e == context.DeadlineExceeded || e == os.ErrDeadlineExceeded {
			return true
		}
		var ne net.Error
		return errors.As(e, &ne) && ne.Timeout()
	})
}
