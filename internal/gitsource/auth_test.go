package gitsource

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/flow-ci/flow-ci/internal/gittest"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func TestAuthFromSecretData(t *testing.T) {
	t.Parallel()
	srv := gittest.NewSSHServer(t, t.TempDir())
	tls := gittest.NewHTTPServer(t, t.TempDir(), gittest.HTTPOptions{TLS: true})
	const pass = "p4ss-phrase"
	encrypted := srv.EncryptedIdentity(t, pass)

	ok := map[string]map[string][]byte{
		"nil":             nil,
		"empty":           {},
		"basic":           {KeyUsername: []byte("u"), KeyPassword: []byte("p")},
		"bearer":          {KeyBearerToken: []byte("t")},
		"ca only":         {KeyCACert: tls.CACert},
		"ssh":             {KeyIdentity: srv.Identity, KeyKnownHosts: srv.KnownHosts},
		"ssh + user":      {KeyIdentity: srv.Identity, KeyKnownHosts: srv.KnownHosts, KeyUsername: []byte("deploy")},
		"ssh encrypted":   {KeyIdentity: encrypted, KeyKnownHosts: srv.KnownHosts, KeyPassword: []byte(pass)},
		"unencrypted+pwd": {KeyIdentity: srv.Identity, KeyKnownHosts: srv.KnownHosts, KeyPassword: []byte("ignored")},
	}
	for name, data := range ok {
		a, err := AuthFromSecretData(data)
		if err != nil {
			t.Errorf("%s: unexpected error %v", name, err)
		}
		if (a == nil) != (len(data) == 0) {
			t.Errorf("%s: auth = %v, want nil only for empty data", name, a)
		}
	}

	bad := map[string]struct {
		data   map[string][]byte
		reason string
	}{
		"ssh without known_hosts": {map[string][]byte{KeyIdentity: srv.Identity}, "known_hosts is required"},
		"encrypted, no password": {map[string][]byte{KeyIdentity: encrypted, KeyKnownHosts: srv.KnownHosts},
			"identity is encrypted; set password"},
		"encrypted, wrong password": {map[string][]byte{KeyIdentity: encrypted, KeyKnownHosts: srv.KnownHosts,
			KeyPassword: []byte("nope")}, "cannot decrypt"},
		"garbage identity":      {map[string][]byte{KeyIdentity: []byte("-----BEGIN nope"), KeyKnownHosts: srv.KnownHosts}, "not a valid PEM"},
		"garbage known_hosts":   {map[string][]byte{KeyIdentity: srv.Identity, KeyKnownHosts: []byte("host ssh-ed25519 !!!")}, "known_hosts"},
		"known_hosts only":      {map[string][]byte{KeyKnownHosts: srv.KnownHosts}, "identity is missing"},
		"token and basic":       {map[string][]byte{KeyBearerToken: []byte("t"), KeyUsername: []byte("u"), KeyPassword: []byte("p")}, "not both"},
		"username only":         {map[string][]byte{KeyUsername: []byte("u")}, "password is missing"},
		"password only":         {map[string][]byte{KeyPassword: []byte("p")}, "username is missing"},
		"bad ca.crt":            {map[string][]byte{KeyCACert: []byte("not a cert")}, "ca.crt"},
		"identity with a token": {map[string][]byte{KeyIdentity: srv.Identity, KeyKnownHosts: srv.KnownHosts, KeyBearerToken: []byte("t")}, "cannot be combined"},
	}
	for name, tc := range bad {
		_, err := AuthFromSecretData(tc.data)
		if !errors.Is(err, ErrInvalidAuth) || !IsPermanent(err) {
			t.Errorf("%s: error = %v, want ErrInvalidAuth", name, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: error %q, want it to mention %q", name, err, tc.reason)
		}
		if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), pass) {
			t.Errorf("%s: error %q leaks key material", name, err)
		}
	}
}

func TestKnownHosts(t *testing.T) {
	t.Parallel()
	newKey := func() ssh.PublicKey {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k, err := ssh.NewPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k1, k2, k3 := newKey(), newKey(), newKey()
	line := func(hosts string, k ssh.PublicKey) string {
		return hosts + " " + string(ssh.MarshalAuthorizedKey(k))
	}
	data := "# comment\n" +
		line("github.com,140.82.121.4", k1) +
		line("[git.example.com]:2222", k2) +
		line(knownhosts.HashHostname("hashed.example.com"), k3) +
		line("*.corp.example,!bad.corp.example", k1) +
		"@revoked " + line("github.com", k2) +
		"@cert-authority " + line("*.ca.example", k3)
	kh, err := parseKnownHosts([]byte(data))
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		hostport string
		key      ssh.PublicKey
		ok       bool
	}{
		{"github.com:22", k1, true},
		{"GitHub.com:22", k1, true},
		{"140.82.121.4:22", k1, true},
		{"github.com:22", k2, false},   // revoked, and not the trusted key
		{"github.com:2222", k1, false}, // non-default port needs [host]:port
		{"git.example.com:2222", k2, true},
		{"git.example.com:22", k2, false},
		{"hashed.example.com:22", k3, true},
		{"other.example.com:22", k3, false},
		{"a.corp.example:22", k1, true},
		{"bad.corp.example:22", k1, false}, // negated
		{"x.ca.example:22", k3, false},     // cert-authority lines are not trusted
	}
	for _, tc := range cases {
		err := kh.callback(tc.hostport)(tc.key)
		if (err == nil) != tc.ok {
			t.Errorf("callback(%s) = %v, want ok=%v", tc.hostport, err, tc.ok)
		}
	}
	if diff := cmp.Diff([]string{ssh.KeyAlgoED25519}, kh.algorithms("github.com:22")); diff != "" {
		t.Errorf("algorithms (-want +got):\n%s", diff)
	}
	if _, err := parseKnownHosts([]byte("# only a comment\n")); !errors.Is(err, ErrInvalidAuth) {
		t.Errorf("empty known_hosts: %v, want ErrInvalidAuth", err)
	}
}
