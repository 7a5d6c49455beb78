package gitsource

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// everywhere allows every address, to test URL syntax apart from the egress policy.
var everywhere = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}

// The policy is tested as a decision, and at the dial hook that must refuse before any
// packet is sent; no test connects to these addresses.
func TestEgressPolicy(t *testing.T) {
	t.Parallel()
	denied := []string{
		"127.0.0.1", "127.1.2.3", "::1", "0.0.0.0", "::",
		"10.0.0.1", "172.16.5.4", "192.168.1.1", "fd00:ec2::254", "fc00::1",
		"100.64.0.1", "100.100.100.200", // CGNAT: some clouds' metadata
		"169.254.169.254", "fe80::1",
		"::ffff:169.254.169.254", "::ffff:127.0.0.1", // IPv4-mapped
		"::169.254.169.254", "::a9fe:a9fe", // IPv4-compatible
		"64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2", // NAT64, 6to4, Teredo
		"224.0.0.1", "ff02::1", "255.255.255.255", "198.18.0.1",
	}
	allowed := []string{"140.82.121.4", "8.8.8.8", "2606:4700:4700::1111", "2001:4860:4860::8888"}
	for _, a := range denied {
		if err := (Egress{}).Check(netip.MustParseAddr(a)); !errors.Is(err, ErrAddressNotAllowed) {
			t.Errorf("%s: %v, want denied", a, err)
		}
	}
	for _, a := range allowed {
		if err := (Egress{}).Check(netip.MustParseAddr(a)); err != nil {
			t.Errorf("%s: %v, want allowed", a, err)
		}
	}
	nets, err := ParseNetworks([]string{"10.88.0.1", "127.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	e := Egress{Allowed: nets}
	for _, a := range []string{"10.88.0.1", "127.0.0.1", "::ffff:127.0.0.1"} {
		if err := e.Check(netip.MustParseAddr(a)); err != nil {
			t.Errorf("allow-listed %s: %v", a, err)
		}
	}
	if err := e.Check(netip.MustParseAddr("10.88.0.2")); err == nil {
		t.Error("10.88.0.2 is outside the allowed /32")
	}
	if _, err := ParseNetworks([]string{"10.0.0.0/33"}); err == nil {
		t.Error("a bad CIDR was accepted")
	}
}

func TestDialGuard(t *testing.T) {
	t.Parallel()
	c := &call{opts: options{timeout: time.Second}}
	control := c.dialer().Control
	for _, a := range []string{"169.254.169.254:80", "[fd00:ec2::254]:80", "[::ffff:169.254.169.254]:80", "127.0.0.1:8418", "10.0.0.1:443"} {
		if err := control("tcp", a, nil); !errors.Is(err, ErrAddressNotAllowed) {
			t.Errorf("dial %s: %v, want refused", a, err)
		}
	}
	if !errors.Is(c.state.blockedAddr, ErrAddressNotAllowed) {
		t.Errorf("blocked dial was not recorded")
	}
	if err := control("tcp", "140.82.121.4:22", nil); err != nil {
		t.Errorf("dial a public address: %v", err)
	}

	// Through go-git's HTTP transport: the URL check is bypassed (as a name that
	// resolves to the address would be), so the dial guard must act.
	ep, err := parseURL("http://169.254.169.254/repo.git", Egress{Allowed: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	guarded := &call{ctx: ctx, repoURL: ep.String(), ep: ep, opts: options{timeout: 5 * time.Second}, meter: &meter{limit: 1 << 20}, body: &meter{limit: 1 << 20}}
	sess, done, err := guarded.session()
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	_, err = sess.AdvertisedReferencesContext(ctx)
	if err = guarded.fail("list refs of", err); !errors.Is(err, ErrAddressNotAllowed) || !strings.Contains(err.Error(), "link-local") {
		t.Errorf("dial to a metadata address: %v, want ErrAddressNotAllowed", err)
	}
}
