package gitsource

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
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
		blocked := Egress{}.Check(netip.MustParseAddr("169.254.169.254"))
		err := classify(context.Background(), "fetch", "https://h/x.git", errors.New("EOF"),
			&callState{blockedAddr: blocked}, nil)
		if !errors.Is(err, ErrAddressNotAllowed) || !IsPermanent(err) || !strings.Contains(err.Error(), "link-local") {
			t.Errorf("classify = %v", err)
		}
		err = classify(context.Background(), "fetch", "ssh://h/x.git", errors.New("handshake failed"),
			&callState{hostKeyErr: errors.New("key mismatch")}, nil)
		if !errors.Is(err, ErrHostKeyMismatch) {
			t.Errorf("classify = %v", err)
		}
	})
}

func TestClassifyKeepsServerTextOut(t *testing.T) {
	t.Parallel()
	body := "internal admin page: user=admin token=abc secret-internal-data"
	cases := []struct {
		name string
		err  error
		st   callState
		want error
	}{
		{"http 500 with a body", errors.New("unexpected client error: " + body), callState{httpStatus: 500}, nil},
		{"http 404", fmt.Errorf("%w: %s", transport.ErrRepositoryNotFound, body), callState{httpStatus: 404}, ErrRepositoryNotFound},
		{"http 401 echoing the request", errors.New("Authorization: Basic Y2k6aHVudGVyMg== " + body), callState{httpStatus: 401}, ErrAuthenticationFailed},
		{"pkt-line ERR", errors.New("ERR " + body), callState{}, nil},
		{"over budget", errors.New(body), callState{overBudget: true}, ErrTooLarge},
	}
	for _, tc := range cases {
		err := classify(context.Background(), "list refs of", "https://h/x.git", tc.err, &tc.st, &Auth{password: "hunter2"})
		if strings.Contains(err.Error(), "secret-internal-data") || strings.Contains(err.Error(), "Y2k6aHVudGVyMg") {
			t.Errorf("%s: server text reached the message: %q", tc.name, err)
		}
		if tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if tc.st.httpStatus != 0 && !strings.Contains(err.Error(), fmt.Sprintf("HTTP %d", tc.st.httpStatus)) {
			t.Errorf("%s: %q does not name the status", tc.name, err)
		}
	}
}

func TestSanitizeMasksAuthorization(t *testing.T) {
	t.Parallel()
	got := sanitize("401: you sent Authorization: Basic Y2k6aHVudGVyMg== and Bearer tok-abcdef", []string{"ci:hunter2"})
	if strings.Contains(got, "Y2k6aHVudGVyMg") || strings.Contains(got, "tok-abcdef") {
		t.Errorf("sanitize = %q", got)
	}
}
