package gitsource

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrAddressNotAllowed: the host is, or resolves to, an address the egress policy
// denies.
var ErrAddressNotAllowed = errors.New("address not allowed")

// deniedRanges are refused by default: the machine itself, private networks, cloud
// metadata and everything that is not the public internet. IPv6 forms that embed an
// IPv4 address (IPv4-compatible, NAT64, 6to4, Teredo) are refused whole, since the
// embedded address may be any of the others.
var deniedRanges = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space (CGNAT)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (cloud metadata)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible"},
	{netip.MustParsePrefix("64:ff9b::/96"), "NAT64"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "NAT64 (local use)"},
	{netip.MustParsePrefix("100::/64"), "discard"},
	{netip.MustParsePrefix("2001::/32"), "Teredo"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("2002::/16"), "6to4"},
	{netip.MustParsePrefix("fc00::/7"), "unique local (cloud metadata)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// Egress decides which addresses a call may connect to.
type Egress struct {
	// Allowed networks are reachable even where the default policy denies them, for
	// a git server on a private network (the operator's --git-allowed-networks).
	Allowed []netip.Prefix
}

// Check returns an error wrapping ErrAddressNotAllowed when ip may not be dialled.
func (e Egress) Check(ip netip.Addr) error {
	ip = ip.Unmap().WithZone("")
	for _, p := range e.Allowed {
		if p.Contains(ip) {
			return nil
		}
	}
	for _, d := range deniedRanges {
		if d.prefix.Contains(ip) {
			return fmt.Errorf("%w: %s is %s (the operator's --git-allowed-networks can allow it)", ErrAddressNotAllowed, ip, d.why)
		}
	}
	return nil
}

// AllowsExplicitly reports whether ip is in one of the Allowed networks, which the
// operator named itself; the default policy's verdict does not count. Plain-text
// protocols that carry credentials may reach only such addresses.
func (e Egress) AllowsExplicitly(ip netip.Addr) bool {
	ip = ip.Unmap().WithZone("")
	for _, p := range e.Allowed {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ParseNetworks parses CIDRs (or single addresses) for Egress.Allowed.
func ParseNetworks(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("allowed network %q: %w", s, err)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
