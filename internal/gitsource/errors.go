package gitsource

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
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

var userinfoRE = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://)[^/?#@\s]*@`)

// sanitize makes text safe to surface: known secret values (also in their
// URL-escaped forms) become "***" and userinfo is stripped from URLs.
func sanitize(text string, secrets []string) string {
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for _, form := range []string{s, url.PathEscape(s), url.QueryEscape(s)} {
			text = strings.ReplaceAll(text, form, "***")
		}
	}
	text = userinfoRE.ReplaceAllString(text, "$1")
	if len(text) > maxDetail {
		text = strings.ToValidUTF8(text[:maxDetail], "") + "..."
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
	blockedAddr error // dial refused by the link-local/metadata guard
	hostKeyErr  error // ssh host key rejected
}

// classify turns an error from a go-git operation into one wrapping a
// sentinel, with sanitised text and no reference to the original error (its
// text may carry secrets).
func classify(ctx context.Context, op, repoURL string, err error, st *callState, a *Auth) error {
	if err == nil {
		return nil
	}
	secrets := a.secretValues()
	detail := sanitize(err.Error(), secrets)
	wrap := func(sentinel error) error {
		return fmt.Errorf("%s %s: %w: %s", op, safeURL(repoURL), sentinel, detail)
	}
	switch {
	case st != nil && st.blockedAddr != nil:
		return fmt.Errorf("%s %s: %w: %s", op, safeURL(repoURL), ErrInvalidURL, st.blockedAddr.Error())
	case st != nil && st.hostKeyErr != nil:
		return fmt.Errorf("%s %s: %w: %s", op, safeURL(repoURL), ErrHostKeyMismatch, sanitize(st.hostKeyErr.Error(), secrets))
	case strings.Contains(err.Error(), "no common algorithm for host key"):
		// The server has no host key of a type listed in known_hosts.
		return wrap(ErrHostKeyMismatch)
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || isTimeout(err):
		return wrap(ErrTimeout)
	case ctx.Err() != nil:
		return fmt.Errorf("%s %s: %w", op, safeURL(repoURL), ctx.Err())
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return wrap(ErrRepositoryNotFound)
	case errors.Is(err, transport.ErrAuthenticationRequired),
		errors.Is(err, transport.ErrAuthorizationFailed),
		errors.Is(err, transport.ErrInvalidAuthMethod),
		strings.Contains(err.Error(), "unable to authenticate"):
		return wrap(ErrAuthenticationFailed)
	case errors.Is(err, transport.ErrEmptyRemoteRepository):
		return wrap(ErrEmptyRepository)
	case hasCause[x509.UnknownAuthorityError](err), hasCause[x509.HostnameError](err),
		hasCause[x509.CertificateInvalidError](err):
		return wrap(ErrTLSVerification)
	}
	return fmt.Errorf("%s %s: %s", op, safeURL(repoURL), detail)
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
