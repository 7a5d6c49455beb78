package gitsource

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/net/proxy"
)

// call carries one operation's validated inputs, deadline, budget and observations.
type call struct {
	ctx     context.Context
	repoURL string
	ep      *transport.Endpoint
	auth    *Auth
	opts    options
	budget  Budget
	// meter counts the bytes read from the network; body counts HTTP bodies after
	// decoding. Both are held to budget.Bytes.
	meter *meter
	body  *meter

	mu    sync.Mutex
	state callState
}

// newCall validates repoURL and auth for each other and starts the deadline.
func newCall(ctx context.Context, repoURL string, a *Auth, def time.Duration, budget Budget, opts []Option) (*call, context.CancelFunc, error) {
	o := options{timeout: def}
	for _, opt := range opts {
		opt(&o)
	}
	ep, err := parseURL(repoURL, o.egress)
	if err != nil {
		return nil, nil, err
	}
	if err := a.checkFor(ep); err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	b := o.budgetOr(budget)
	return &call{ctx: ctx, repoURL: repoURL, ep: ep, auth: a, opts: o, budget: b,
		meter: &meter{limit: b.Bytes}, body: &meter{limit: b.Bytes}}, cancel, nil
}

func (c *call) fail(op string, err error) error {
	c.mu.Lock()
	st := c.state
	c.mu.Unlock()
	st.overBudget = c.meter.over.Load() || c.body.over.Load()
	return classify(c.ctx, op, c.repoURL, err, &st, c.auth)
}

func (c *call) record(f func(*callState)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.state)
}

// dialer checks every address actually dialled against the egress policy, after DNS
// resolution, so a name that re-resolves to a denied address is still refused.
func (c *call) dialer() *net.Dialer {
	return &net.Dialer{
		Timeout:   min(c.opts.timeout, maxDialTimeout),
		KeepAlive: 30 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("unexpected dial address %q: %w", address, err)
			}
			if err := c.opts.egress.Check(ap.Addr()); err != nil {
				c.record(func(s *callState) { s.blockedAddr = err })
				return err
			}
			return nil
		},
	}
}

// dial connects through the guarded dialer and meters what the connection reads.
func (c *call) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := c.dialer().DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return meteredConn{Conn: conn, m: c.meter}, nil
}

// session opens an upload-pack session with a transport private to this
// call: go-git's client.InstallProtocol would change every caller's
// transport. The returned func releases it.
func (c *call) session() (transport.UploadPackSession, func(), error) {
	var (
		sess transport.UploadPackSession
		err  error
		done = func() {}
	)
	switch c.ep.Protocol {
	case "http", "https":
		tr := c.httpTransport()
		rt := guardTransport{next: tr, record: c.record, body: c.body}
		hc := &http.Client{Transport: rt, Timeout: c.opts.timeout, CheckRedirect: func(req *http.Request, via []*http.Request) error {
			err := sameOrigin(req, via)
			if err != nil {
				c.record(func(s *callState) { s.blockedAddr = err })
			}
			return err
		}}
		sess, err = githttp.NewClient(hc).NewUploadPackSession(c.ep, c.auth.httpAuth())
		done = tr.CloseIdleConnections
	case "ssh":
		sess, err = c.sshSession()
	default:
		err = fmt.Errorf("%w: protocol %q is not allowed", ErrInvalidURL, c.ep.Protocol)
	}
	if err != nil {
		done()
		if errors.Is(err, ErrInvalidURL) || errors.Is(err, ErrInvalidAuth) {
			return nil, nil, err
		}
		return nil, nil, c.fail("connect to", err)
	}
	return sess, func() { _ = sess.Close(); done() }, nil
}

func (c *call) httpTransport() *http.Transport {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.auth != nil && c.auth.caPool != nil {
		tlsCfg.RootCAs = c.auth.caPool
	}
	return &http.Transport{
		// No proxy, not even HTTPS_PROXY from the environment: every address is dialled
		// here, where the egress policy sees it.
		Proxy:                 nil,
		DialContext:           c.dial,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   min(c.opts.timeout, maxTLSTimeout),
		ResponseHeaderTimeout: c.opts.timeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       30 * time.Second,
		ForceAttemptHTTP2:     true,
		// Never ask for gzip: Go would inflate the answer out of the metered
		// connection's sight. guardTransport decodes what a server sends unasked.
		DisableCompression: true,
	}
}

// advertised reads the remote's ref advertisement within the call's bounds.
func (c *call) advertised(sess transport.UploadPackSession) (*packp.AdvRefs, error) {
	ar, err := sess.AdvertisedReferencesContext(c.ctx)
	if err != nil {
		return nil, c.fail("list refs of", err)
	}
	if err := checkAdvertised(ar); err != nil {
		return nil, c.fail("list refs of", err)
	}
	return ar, nil
}

// go-git's SSH transport dials through golang.org/x/net/proxy and has no
// other hook: its handshake takes no context, so a server that accepts TCP
// and stays silent would hang it. A private proxy scheme routes the dial to
// this call's guarded dialer, whose connection is closed when the call ends.
const sshDialScheme = "flowci-gitsource-dial"

var sshDialers sync.Map // token -> *call

func init() {
	proxy.RegisterDialerType(sshDialScheme, func(u *url.URL, _ proxy.Dialer) (proxy.Dialer, error) {
		v, ok := sshDialers.Load(u.Host)
		if !ok {
			return nil, errors.New("ssh dialer is no longer registered")
		}
		return sshDialer{v.(*call)}, nil
	})
}

type sshDialer struct{ c *call }

func (d sshDialer) Dial(network, addr string) (net.Conn, error) {
	return d.DialContext(d.c.ctx, network, addr)
}

func (d sshDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := d.c.dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	context.AfterFunc(d.c.ctx, func() { _ = conn.Close() })
	return conn, nil
}

func (c *call) sshSession() (transport.UploadPackSession, error) {
	auth := c.auth.sshAuth(c.ep, c.opts.timeout, func(err error) {
		c.record(func(s *callState) { s.hostKeyErr = err })
	})
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	sshDialers.Store(token, c)
	defer sshDialers.Delete(token)

	ep := *c.ep
	ep.Proxy = transport.ProxyOptions{URL: sshDialScheme + "://" + token}
	return gitssh.DefaultClient.NewUploadPackSession(&ep, auth)
}
