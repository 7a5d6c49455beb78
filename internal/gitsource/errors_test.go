package gitsource

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/google/go-cmp/cmp"
)

func TestSanitize(t *testing.T) {
	t.Parallel()
	secrets := []string{"hunter2", "tok-abc", "p@ss word", ""}
	cases := map[string]string{
		"auth failed for https://bob:hunter2@host/x.git": "auth failed for https://host/x.git",
		"Get \"https://tok-abc@host/info/refs\": EOF":    "Get \"https://host/info/refs\": EOF",
		"server said: bad token tok-abc":                 "server said: bad token ***",
		"ssh://git@host:22/x and http://u:p@h/y":         "ssh://host:22/x and http://h/y",
		"nothing secret here":                            "nothing secret here",
		strings.Repeat("x", maxDetail+10):                strings.Repeat("x", maxDetail) + "...",
	}
	for in, want := range cases {
		if diff := cmp.Diff(want, sanitize(in, secrets)); diff != "" {
			t.Errorf("sanitize(%q) (-want +got):\n%s", in, diff)
		}
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	auth := &Auth{password: "hunter2"}
	timeoutErr := &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}
	cases := []struct {
		name      string
		err       error
		want      error
		permanent bool
	}{
		{"not found", fmt.Errorf("%w: gone", transport.ErrRepositoryNotFound), ErrRepositoryNotFound, true},
		{"auth required", transport.ErrAuthenticationRequired, ErrAuthenticationFailed, true},
		{"forbidden", transport.ErrAuthorizationFailed, ErrAuthenticationFailed, true},
		{"ssh auth", errors.New("ssh: handshake failed: ssh: unable to authenticate"), ErrAuthenticationFailed, true},
		{"empty", transport.ErrEmptyRemoteRepository, ErrEmptyRepository, true},
		{"wrapped timeout", plumbing.NewUnexpectedError(timeoutErr), ErrTimeout, false},
	}
	for _, tc := range cases {
		err := classify(context.Background(), "fetch", "https://h/x.git", tc.err, &callState{}, auth)
		if !errors.Is(err, tc.want) || IsPermanent(err) != tc.permanent {
			t.Errorf("%s: classify = %v (permanent %v), want %v (permanent %v)", tc.name, err, IsPermanent(err), tc.want, tc.permanent)
		}
	}

	t.Run("unknown errors are transient and scrubbed", func(t *testing.T) {
		err := classify(context.Background(), "fetch", "https://h/x.git",
			errors.New("dial https://u:hunter2@h: connection refused"), &callState{}, auth)
		if IsPermanent(err) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("classify = %q", err)
		}
	})
	t.Run("expired context is a timeout", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
		defer cancel()
		<-ctx.Done()
		err := classify(ctx, "fetch", "https://h/x.git", errors.New("read: use of closed network connection"), &callState{}, nil)
		if !errors.Is(err, ErrTimeout) {
			t.Errorf("classify = %v, want ErrTimeout", err)
		}
	})
	t.Run("recorded observations win over error text", func(t *testing.T) {
		err := classify(context.Background(), "fetch", "https://h/x.git", errors.New("EOF"),
			&callState{blockedAddr: errLinkLocal}, nil)
		if !errors.Is(err, ErrInvalidURL) || !strings.Contains(err.Error(), "link-local") {
			t.Errorf("classify = %v", err)
		}
		err = classify(context.Background(), "fetch", "ssh://h/x.git", errors.New("handshake failed"),
			&callState{hostKeyErr: errors.New("key mismatch")}, nil)
		if !errors.Is(err, ErrHostKeyMismatch) {
			t.Errorf("classify = %v", err)
		}
	})
}

// TestDialGuard checks the address filter that runs after DNS resolution;
// names that resolve to metadata addresses are out of reach of a hermetic
// test, so the Control hook is exercised directly.
func TestDialGuard(t *testing.T) {
	t.Parallel()
	blocked := []string{"169.254.169.254:80", "169.254.0.1:443", "[fe80::1]:22", "[fd00:ec2::254]:80", "[::ffff:169.254.169.254]:80"}
	allowed := []string{"127.0.0.1:80", "[::1]:22", "10.0.0.1:443", "140.82.121.4:22"}
	c := &call{opts: options{timeout: time.Second}}
	control := c.dialer().Control
	for _, a := range blocked {
		if err := control("tcp", a, nil); !errors.Is(err, errLinkLocal) {
			t.Errorf("dial %s: %v, want refused", a, err)
		}
	}
	if !errors.Is(c.state.blockedAddr, errLinkLocal) {
		t.Errorf("blocked dial was not recorded")
	}
	for _, a := range allowed {
		if err := control("tcp", a, nil); err != nil {
			t.Errorf("dial %s: %v, want allowed", a, err)
		}
	}
	open := &call{opts: options{timeout: time.Second, allowLinkLocal: true}}
	if err := open.dialer().Control("tcp", blocked[0], nil); err != nil {
		t.Errorf("WithAllowLinkLocal: dial %s: %v", blocked[0], err)
	}

	// Through go-git's HTTP transport: the URL check is bypassed (as a name
	// resolving to the address would be) so that the dial guard must act.
	ep, err := parseURL("http://169.254.169.254/repo.git", true)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e2e := &call{ctx: ctx, repoURL: ep.String(), ep: ep, opts: options{timeout: 5 * time.Second}}
	sess, done, err := e2e.session()
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	_, err = sess.AdvertisedReferencesContext(ctx)
	if err = e2e.fail("list refs of", err); !errors.Is(err, ErrInvalidURL) || !strings.Contains(err.Error(), "link-local") {
		t.Errorf("dial to a metadata address: %v, want ErrInvalidURL", err)
	}
}
