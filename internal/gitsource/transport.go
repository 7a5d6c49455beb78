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

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/net/proxy"
)

const (
	defaultTimeout      = 60 * time.Second
	defaultCloneTimeout = 10 * time.Minute
	maxDialTimeout      = 30 * time.Second
	maxTLSTimeout       = 15 * time.Second
)

type options struct {
	timeout        time.Duration
	allowLinkLocal bool
}

// Option tunes one call.
type Option func(*options)

// WithTimeout bounds the whole call (default 60s, 10m for Clone). A
// non-positive d keeps the default.
func WithTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.timeout = d
		}
	}
}

// WithAllowLinkLocal lets the host resolve to link-local or cloud metadata
// addresses, which are refused by default so a repository URL cannot be
// used to reach the node's metadata service.
func WithAllowLinkLocal() Option { return func(o *options) { o.allowLinkLocal = true } }

var errLinkLocal = errors.New("host resolves to a link-local/metadata address")

// awsMetadataV6 is the IPv6 address of the EC2 instance metadata service.
var awsMetadataV6 = netip.MustParseAddr("fd00:ec2::254")

func isLinkLocalOrMetadata(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip == awsMetadataV6
}

// call carries one operation's validated inputs, deadline and observations.
type call struct {
	ctx     context.Context
	repoURL string
	ep      *transport.Endpoint
	auth    *Auth
	opts    options

	mu    sync.Mutex
	state callState
}

// newCall validates repoURL and auth for each other and starts the deadline.
func newCall(ctx context.Context, repoURL string, a *Auth, def time.Duration, opts []Option) (*call, context.CancelFunc, error) {
	o := options{timeout: def}
	for _, opt := range opts {
		opt(&o)
	}
	ep, err := parseURL(repoURL, o.allowLinkLocal)
	if err != nil {
		return nil, nil, err
	}
	if err := a.checkFor(ep); err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	return &call{ctx: ctx, repoURL: repoURL, ep: ep, auth: a, opts: o}, cancel, nil
}

func (c *call) fail(op string, err error) error {
	c.mu.Lock()
	st := c.state
	c.mu.Unlock()
	return classify(c.ctx, op, c.repoURL, err, &st, c.auth)
}

func (c *call) record(f func(*callState)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.state)
}

// dialer checks every address actually dialled, after DNS resolution, so a
// name that re-resolves to a metadata address is still refused.
func (c *call) dialer() *net.Dialer {
	return &net.Dialer{
		Timeout:   min(c.opts.timeout, maxDialTimeout),
		KeepAlive: 30 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			if c.opts.allowLinkLocal {
				return nil
			}
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("unexpected dial address %q: %w", address, err)
			}
			if isLinkLocalOrMetadata(ap.Addr()) {
				c.record(func(s *callState) { s.blockedAddr = errLinkLocal })
				return errLinkLocal
			}
			return nil
		},
	}
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
		hc := &http.Client{Transport: tr, Timeout: c.opts.timeout}
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
		// Loopback and NO_PROXY hosts are dialled directly; a configured
		// proxy is trusted to apply its own egress policy.
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           c.dialer().DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   min(c.opts.timeout, maxTLSTimeout),
		ResponseHeaderTimeout: c.opts.timeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       30 * time.Second,
		ForceAttemptHTTP2:     true,
	}
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
	conn, err := d.c.dialer().DialContext(ctx, network, addr)
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
