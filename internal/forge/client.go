package forge

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"

	"github.com/flow-ci/flow-ci/internal/gitsource"
	"github.com/flow-ci/flow-ci/internal/shorten"
)

const (
	defaultTimeout = 10 * time.Second
	// maxResponse bounds what Post reads: a status reply is a few hundred
	// bytes, and a hostile or broken server must not make it read more.
	maxResponse = 64 << 10
	// maxDetail caps the forge's own message in an error, so it fits a
	// condition or an event.
	maxDetail = 200
)

// ErrPermanent is wrapped by errors a retry cannot fix: a bad token, an
// unknown repository or commit, invalid input, a refused address, a redirect.
var ErrPermanent = errors.New("retrying cannot help")

// ErrTransitionRefused is wrapped (with ErrPermanent) when GitLab refuses the
// state change: it answers 400 when a status is set to the state it already
// has (pending -> pending, running -> running), which a caller that re-posts
// after a lost reply may treat as done.
var ErrTransitionRefused = errors.New("the forge refused the state change")

// Client posts statuses. Use it by pointer; the zero value is usable.
// Set the fields before the first Post: the transport is built then.
type Client struct {
	Egress  gitsource.Egress // checked at dial time on every connection
	Timeout time.Duration    // per request, including reading the reply; default 10s

	once sync.Once
	hc   *http.Client
}

// plainHTTP marks the context of a request to an http:// URL, for the dialer.
type plainHTTP struct{}

// refusedError marks a dial the egress policy refused, so Post can tell it
// from other dial errors and report only the policy's own text.
type refusedError struct{ err error }

func (e *refusedError) Error() string { return e.err.Error() }
func (e *refusedError) Unwrap() error { return e.err }

// client builds the HTTP client once, so connections to a forge are reused
// across runs.
func (c *Client) client() *http.Client {
	c.once.Do(func() {
		egress := c.Egress
		dialer := &net.Dialer{
			Timeout:   defaultTimeout,
			KeepAlive: 30 * time.Second,
			// ControlContext sees the resolved address of every connection, so a name
			// that resolves (or re-resolves) to a denied address is refused. A token sent
			// over plain http may only reach networks the operator allowed by name.
			ControlContext: func(ctx context.Context, _, address string, _ syscall.RawConn) error {
				ap, err := netip.ParseAddrPort(address)
				if err != nil {
					return &refusedError{fmt.Errorf("%w: unexpected dial address %q", gitsource.ErrAddressNotAllowed, address)}
				}
				if ctx.Value(plainHTTP{}) != nil && !egress.AllowsExplicitly(ap.Addr()) {
					return &refusedError{fmt.Errorf("%w: the token would travel in clear text over http:// to %s; use https, or the operator's --git-allowed-networks for a forge on a trusted network",
						gitsource.ErrAddressNotAllowed, ap.Addr())}
				}
				if err := egress.Check(ap.Addr()); err != nil {
					return &refusedError{err}
				}
				return nil
			},
		}
		c.hc = &http.Client{
			Transport: &http.Transport{
				// No proxy, not even HTTPS_PROXY: every address is dialled here,
				// where the egress policy sees it.
				Proxy:                 nil,
				DialContext:           dialer.DialContext,
				TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
				TLSHandshakeTimeout:   10 * time.Second,
				ExpectContinueTimeout: time.Second,
				ForceAttemptHTTP2:     true,
				// No transparent gzip: what Post reads is bounded as sent.
				DisableCompression:  true,
				MaxIdleConns:        32,
				MaxIdleConnsPerHost: 4,
				IdleConnTimeout:     90 * time.Second,
			},
			// A redirect would resend the token to wherever Location points.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	})
	return c.hc
}

func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return defaultTimeout
}

// Post sends one status and returns nil when the forge answers 2xx. Errors
// name the forge host and HTTP status and never contain the token. 4xx other
// than 408 and 429 (and GitHub's rate-limit 403), redirects, invalid input and
// refused addresses wrap ErrPermanent; 5xx, 408, 429, timeouts and connection
// errors are transient.
func (c *Client) Post(ctx context.Context, p Provider, baseURL, repoURL, token string, s Status) error {
	callCtx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	if strings.HasPrefix(strings.ToLower(baseURL), "http://") {
		callCtx = context.WithValue(callCtx, plainHTTP{}, true)
	}
	req, err := NewRequest(callCtx, p, baseURL, repoURL, token, s)
	if err != nil {
		return fmt.Errorf("post %s status: %w: %w", p, ErrPermanent, err)
	}
	where := fmt.Sprintf("post %s status to %s", p, req.URL.Host)
	resp, err := c.client().Do(req)
	if err != nil {
		return c.transportError(ctx, where, err, token)
	}
	defer func() { _ = resp.Body.Close() }()
	// Reading to EOF lets the connection be reused; the limit keeps a huge
	// body from being read at all. A failed read only loses the detail.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	return statusError(p, where, resp, body, token)
}

func (c *Client) transportError(parent context.Context, where string, err error, token string) error {
	var refused *refusedError
	var netErr net.Error
	switch {
	case errors.As(err, &refused):
		return fmt.Errorf("%s: %w (%w)", where, refused.err, ErrPermanent)
	case parent.Err() != nil:
		return fmt.Errorf("%s: %w", where, parent.Err())
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Errorf("%s: no answer within %s: %w", where, c.timeout(), context.DeadlineExceeded)
	}
	// The text is Go's (it quotes the URL, which holds no secret), scrubbed
	// anyway; the error itself is not wrapped so nothing unscrubbed is
	// reachable through errors.Unwrap.
	return fmt.Errorf("%s: %s", where, scrub(err.Error(), token))
}

// statusError classifies a non-2xx answer. The forge's own text is read only to
// classify (GitLab's refused transition); the error carries the HTTP status and a fixed
// explanation, never the server's words, which could be anything the forge's owner chose.
func statusError(p Provider, where string, resp *http.Response, body []byte, token string) error {
	code := resp.StatusCode
	head := fmt.Sprintf("%s: HTTP %d", where, code)
	switch {
	case code >= 300 && code < 400:
		return fmt.Errorf("%s redirect to %q (%w): the base url must be the forge's API address", head, redirectHost(resp, token), ErrPermanent)
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, rateLimited(resp):
		return fmt.Errorf("%s: rate limited or timed out", head)
	case p == GitLab && code == http.StatusBadRequest && strings.Contains(forgeMessage(body, token), "Cannot transition status"):
		return fmt.Errorf("%s (%w, %w): the status already has this state", head, ErrTransitionRefused, ErrPermanent)
	case code == http.StatusUnauthorized:
		return fmt.Errorf("%s (%w): the token was refused", head, ErrPermanent)
	case code == http.StatusForbidden:
		return fmt.Errorf("%s (%w): the token may not set commit statuses on this repository", head, ErrPermanent)
	case code == http.StatusNotFound:
		return fmt.Errorf("%s (%w): no such repository or commit, or the token cannot see it", head, ErrPermanent)
	case code >= 400 && code < 500:
		return fmt.Errorf("%s (%w): the forge refused the status", head, ErrPermanent)
	}
	return fmt.Errorf("%s: the forge failed", head)
}

// rateLimited reports GitHub's rate limits, which answer 403 rather than 429;
// they pass, so they are not the permanent "forbidden".
func rateLimited(resp *http.Response) bool {
	return resp.StatusCode == http.StatusForbidden &&
		(resp.Header.Get("Retry-After") != "" || resp.Header.Get("X-RateLimit-Remaining") == "0")
}

// redirectHost is where a redirect pointed, host only: enough to fix the base
// url, and a Location's path or query could carry anything.
func redirectHost(resp *http.Response, token string) string {
	loc, err := resp.Location()
	if err != nil {
		return "(no location)"
	}
	return scrub(loc.Host, token)
}

// forgeMessage is the "message" (or "error") field all three forges put in
// their JSON error replies, flattened to one line, scrubbed and capped. Other
// bodies (HTML from a proxy, say) are not shown.
func forgeMessage(body []byte, token string) string {
	var reply struct {
		Message json.RawMessage `json:"message"`
		Error   json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &reply) != nil {
		return ""
	}
	raw := reply.Message
	if len(raw) == 0 || string(raw) == "null" {
		raw = reply.Error
	}
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var text string
	if json.Unmarshal(raw, &text) != nil {
		text = string(raw) // GitLab sends an object for validation errors
	}
	// Control characters go first, so they cannot hide the token from scrub.
	text = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, text)
	text = strings.Join(strings.Fields(text), " ")
	text = scrub(text, token)
	if len(text) > maxDetail {
		text = shorten.Head(text, maxDetail) + "..."
	}
	return text
}

// scrub replaces the token, also in its URL-escaped and base64 forms, with
// "***". It runs before any truncation, so no partial token survives a cut.
func scrub(text, token string) string {
	if token == "" {
		return text
	}
	forms := []string{
		token, url.PathEscape(token), url.QueryEscape(token),
		base64.StdEncoding.EncodeToString([]byte(token)), base64.RawURLEncoding.EncodeToString([]byte(token)),
	}
	for _, f := range forms {
		text = strings.ReplaceAll(text, f, "***")
	}
	return text
}
