// Package client reads the run archive's API (internal/archive/api) with a Kubernetes
// bearer token: lists of runs, a run's record, and a log byte for byte. Answers are
// bounded; a refusal or a failure is an *Error with the server's status and message.
package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/flow-ci/flow-ci/internal/archive"
	"github.com/flow-ci/flow-ci/internal/archive/api"
)

// Bounds of what the client reads of an answer: a JSON answer (a page of 500 runs, or
// a record: the largest document the store keeps is 16 MiB, with room for the run's
// summary and its logs' states), and the message of an error.
const (
	MaxJSON    = 24 << 20
	maxMessage = 1024
)

// Client reads one archive as one reader.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// New returns a client of the archive served at baseURL (https://host[:port][/prefix]),
// sending token with each request. A nil hc is http.DefaultClient. The token is sent
// over plain http only to a loopback address. An empty token sends no Authorization
// header, for an hc whose transport authenticates each request itself (client-go's
// rest.HTTPWrappersForConfig: a kubeconfig's token, token file or exec plugin).
func New(baseURL, token string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), token: token, hc: hc}
}

// Error is an answer other than a success: its status and the server's message.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("the archive answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// Is makes a 404 an archive.ErrNotFound, so callers test one error for a run or log
// the archive does not hold, wherever the store is.
func (e *Error) Is(target error) bool {
	return target == archive.ErrNotFound && e.Status == http.StatusNotFound
}

// Filter selects the runs of a list; empty fields match every run.
type Filter struct {
	RepoURL, Branch, Phase string
	// Commit is a full SHA or a prefix of at least 4 hex digits.
	Commit string
	// Since and Until bound the runs' creation times: at or after Since, before Until.
	Since, Until time.Time
	// Limit is the page size (0: the server's default; at most api.MaxLimit).
	Limit int
	// After is the next of the previous page.
	After string
}

func (f Filter) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"repo": f.RepoURL, "branch": f.Branch, "phase": f.Phase,
		"commit": f.Commit, "after": f.After} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if !f.Since.IsZero() {
		v.Set("since", f.Since.Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		v.Set("until", f.Until.Format(time.RFC3339Nano))
	}
	if f.Limit != 0 {
		v.Set("limit", strconv.Itoa(f.Limit))
	}
	return v
}

// List reads one page of the runs in namespace ns, newest first; next, when not
// empty, is the Filter.After of the page after it.
func (c *Client) List(ctx context.Context, ns string, f Filter) (runs []api.Summary, next string, err error) {
	var page api.Page
	if err := c.getJSON(ctx, f.values(), &page, ns, "runs"); err != nil {
		return nil, "", err
	}
	return page.Items, page.Next, nil
}

// Get reads the newest archived run named name in ns.
func (c *Client) Get(ctx context.Context, ns, name string) (api.Run, error) {
	return c.GetUID(ctx, ns, name, "")
}

// GetUID reads the archived run of that name with that UID ("": the newest). A run that
// has no record yet (it still runs) is found by its UID while the archive holds a log
// of it: its Record is empty and its Streams are the logs stored so far.
func (c *Client) GetUID(ctx context.Context, ns, name, uid string) (api.Run, error) {
	var run api.Run
	err := c.getJSON(ctx, uidQuery(uid), &run, ns, "runs", name)
	return run, err
}

func uidQuery(uid string) url.Values {
	if uid == "" {
		return nil
	}
	return url.Values{"uid": {uid}}
}

// getJSON reads the JSON answer at the path of segments into v.
func (c *Client) getJSON(ctx context.Context, q url.Values, v any, segments ...string) error {
	resp, err := c.do(ctx, q, segments...)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxJSON+1))
	if err != nil {
		return fmt.Errorf("reading the archive's answer: %w", err)
	}
	if len(b) > MaxJSON {
		return fmt.Errorf("the archive's answer is larger than %d MiB", MaxJSON>>20)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("the archive's answer is not the JSON expected: %w", err)
	}
	return nil
}

// do sends a GET of the path of segments, each escaped, with the query q; an answer
// other than 200 is an *Error.
func (c *Client) do(ctx context.Context, q url.Values, segments ...string) (*http.Response, error) {
	u, err := c.url(q, segments...)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("asking the archive: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer func() { _ = resp.Body.Close() }()
		return nil, errorOf(resp)
	}
	return resp, nil
}

// url is base/v1/namespaces/<segments...>?q. A segment that path cleaning would turn
// into another path ("", ".", "..") is refused before it is sent.
func (c *Client) url(q url.Values, segments ...string) (*url.URL, error) {
	u, err := url.Parse(c.base)
	if err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("the archive's address %q is not an http(s) URL", c.base)
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		return nil, fmt.Errorf("refusing to send a token over plain http to %s: use https", u.Host)
	}
	raw := u.EscapedPath() + "/v1/namespaces"
	for _, s := range segments {
		if s == "" || s == "." || s == ".." {
			return nil, fmt.Errorf("%q is not a name the archive can hold", s)
		}
		raw += "/" + url.PathEscape(s)
	}
	p, err := url.PathUnescape(raw)
	if err != nil {
		return nil, err
	}
	u.Path, u.RawPath, u.RawQuery = p, raw, q.Encode()
	return u, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// errorOf reads a refusal's message: the server's JSON error, else the start of the
// body as text (a proxy's page), printable and bounded.
func errorOf(resp *http.Response) *Error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body api.ErrorBody
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &body) == nil && body.Error != "" {
		msg = body.Error
	}
	msg = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, msg)
	if len(msg) > maxMessage {
		msg = msg[:maxMessage] + "..."
	}
	if msg == "" {
		msg = resp.Status
	}
	return &Error{Status: resp.StatusCode, Message: msg}
}
