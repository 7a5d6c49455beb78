package gitsource

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"golang.org/x/crypto/ssh"
)

// Secret data keys, as Flux's GitRepository uses them.
const (
	KeyUsername    = "username"
	KeyPassword    = "password"
	KeyBearerToken = "bearerToken"
	KeyCACert      = "ca.crt"
	KeyIdentity    = "identity"
	KeyKnownHosts  = "known_hosts"
)

// Auth holds parsed git credentials. A nil *Auth means anonymous access.
type Auth struct {
	username    string
	password    string // HTTP basic password, or the SSH identity passphrase
	bearerToken string
	caPool      *x509.CertPool
	identity    string
	signer      ssh.Signer
	knownHosts  knownHosts
}

// AuthFromSecretData builds Auth from a Secret's data. HTTPS uses
// username+password or bearerToken, plus ca.crt for a private CA. SSH uses
// identity (a PEM private key, decrypted with password if encrypted) and
// known_hosts, which is required: host keys are always verified. Nil or
// empty data gives nil (anonymous).
func AuthFromSecretData(data map[string][]byte) (*Auth, error) {
	if len(data) == 0 {
		return nil, nil
	}
	a := &Auth{
		username:    string(data[KeyUsername]),
		password:    string(data[KeyPassword]),
		bearerToken: string(data[KeyBearerToken]),
		identity:    string(data[KeyIdentity]),
	}
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidAuth, fmt.Sprintf(format, args...))
	}

	if ca := data[KeyCACert]; len(ca) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(ca) {
			return nil, invalid("%s holds no PEM certificate", KeyCACert)
		}
		a.caPool = pool
	}

	known := data[KeyKnownHosts]
	if a.identity != "" {
		if len(known) == 0 {
			return nil, invalid("%s is required with %s: ssh host keys are always verified", KeyKnownHosts, KeyIdentity)
		}
		if a.bearerToken != "" {
			return nil, invalid("%s cannot be combined with %s", KeyBearerToken, KeyIdentity)
		}
		signer, err := parseIdentity([]byte(a.identity), a.password)
		if err != nil {
			return nil, err
		}
		a.signer = signer
		if a.knownHosts, err = parseKnownHosts(known); err != nil {
			return nil, err
		}
		return a, nil
	}

	switch {
	case len(known) > 0:
		return nil, invalid("%s is set but %s is missing", KeyKnownHosts, KeyIdentity)
	case a.bearerToken != "" && (a.username != "" || a.password != ""):
		return nil, invalid("set either %s/%s or %s, not both", KeyUsername, KeyPassword, KeyBearerToken)
	case a.username != "" && a.password == "":
		return nil, invalid("%s is set but %s is missing", KeyUsername, KeyPassword)
	case a.password != "" && a.username == "":
		return nil, invalid("%s is set but %s is missing", KeyPassword, KeyUsername)
	}
	return a, nil
}

// parseIdentity parses a PEM private key. Its errors never quote the key.
func parseIdentity(pemBytes []byte, passphrase string) (ssh.Signer, error) {
	signer, err := ssh.ParsePrivateKey(pemBytes)
	var missing *ssh.PassphraseMissingError
	switch {
	case err == nil:
		return signer, nil
	case errors.As(err, &missing) && passphrase == "":
		return nil, fmt.Errorf("%w: %s is encrypted; set %s to its passphrase", ErrInvalidAuth, KeyIdentity, KeyPassword)
	case errors.As(err, &missing):
		signer, err = ssh.ParsePrivateKeyWithPassphrase(pemBytes, []byte(passphrase))
		if err != nil {
			return nil, fmt.Errorf("%w: cannot decrypt %s with %s (wrong passphrase?)", ErrInvalidAuth, KeyIdentity, KeyPassword)
		}
		return signer, nil
	default:
		return nil, fmt.Errorf("%w: %s is not a valid PEM private key", ErrInvalidAuth, KeyIdentity)
	}
}

func (a *Auth) hasHTTPCredentials() bool {
	return a != nil && (a.username != "" || a.password != "" || a.bearerToken != "")
}

// checkFor rejects auth that does not fit the endpoint's protocol, and
// credentials over plain http.
func (a *Auth) checkFor(ep *transport.Endpoint) error {
	switch ep.Protocol {
	case "ssh":
		if a == nil || a.signer == nil {
			return fmt.Errorf("%w: ssh urls need a secret with %s and %s", ErrInvalidAuth, KeyIdentity, KeyKnownHosts)
		}
	case "http", "https":
		if a != nil && a.signer != nil {
			return fmt.Errorf("%w: %s is for ssh urls, not %s", ErrInvalidAuth, KeyIdentity, ep.Protocol)
		}
		if ep.Protocol == "http" && a.hasHTTPCredentials() {
			return fmt.Errorf("%w: refusing to send credentials over plain http; use https", ErrInvalidAuth)
		}
	}
	return nil
}

func (a *Auth) httpAuth() transport.AuthMethod {
	switch {
	case a == nil:
		return nil
	case a.bearerToken != "":
		return &githttp.TokenAuth{Token: a.bearerToken}
	case a.username != "":
		return &githttp.BasicAuth{Username: a.username, Password: a.password}
	}
	return nil
}

// secretValues lists what sanitize must never let through.
func (a *Auth) secretValues() []string {
	if a == nil {
		return nil
	}
	return []string{a.password, a.bearerToken, a.identity}
}

// sshAuth is go-git's ssh.AuthMethod built from our own parts, so host key
// checking never falls back to ~/.ssh/known_hosts or an ssh-agent.
type sshAuth struct{ cfg ssh.ClientConfig }

func (s *sshAuth) Name() string   { return "ssh-public-keys" }
func (s *sshAuth) String() string { return "user: " + s.cfg.User + ", name: ssh-public-keys" }

func (s *sshAuth) ClientConfig() (*ssh.ClientConfig, error) {
	cfg := s.cfg
	return &cfg, nil
}

// sshAuth builds the per-call SSH auth; onHostKeyErr records a rejected host
// key so the caller can report ErrHostKeyMismatch.
func (a *Auth) sshAuth(ep *transport.Endpoint, timeout time.Duration, onHostKeyErr func(error)) *sshAuth {
	user := ep.User
	if a.username != "" {
		user = a.username
	}
	if user == "" {
		user = "git"
	}
	port := ep.Port
	if port <= 0 {
		port = 22
	}
	// Check against the host the user wrote, not whatever ssh_config or a
	// resolver turned it into.
	hostport := net.JoinHostPort(ep.Host, strconv.Itoa(port))
	check := a.knownHosts.callback(hostport)
	return &sshAuth{cfg: ssh.ClientConfig{
		User: user,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(a.signer)},
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			err := check(key)
			if err != nil {
				onHostKeyErr(err)
			}
			return err
		},
		HostKeyAlgorithms: a.knownHosts.algorithms(hostport),
		Timeout:           min(timeout, maxDialTimeout),
	}}
}
