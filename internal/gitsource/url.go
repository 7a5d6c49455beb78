package gitsource

import (
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

var (
	// scpLikeRE is git's "user@host:path" form. The user is required so that
	// "host:path" and "C:path" are never read as remotes.
	scpLikeRE = regexp.MustCompile(`^([A-Za-z0-9_][A-Za-z0-9._-]*)@([A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]):(.+)$`)
	hostRE    = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9._-]*)$`)
	hexRE     = regexp.MustCompile(`^[0-9a-fA-F]+$`)
	// encodedControlRE is a percent-encoded control character, %00-%1f or %7f.
	encodedControlRE = regexp.MustCompile(`%([01][0-9A-Fa-f]|7[Ff])`)
)

// ValidateURL checks that repoURL is an allowed remote: https://, http://,
// ssh:// or scp-like user@host:path, in printable ASCII, with no credentials,
// query or fragment in it, nothing option-like, no control character even
// percent-encoded, and no IP literal the egress policy (WithAllowedNetworks)
// denies. It does no DNS lookups; resolved addresses are checked when dialling.
func ValidateURL(repoURL string, opts ...Option) error {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	_, err := parseURL(repoURL, o.egress)
	return err
}

// parseURL validates repoURL and returns go-git's endpoint for it. Error
// messages never echo the URL: a rejected one may carry credentials.
func parseURL(raw string, egress Egress) (*transport.Endpoint, error) {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidURL, fmt.Sprintf(format, args...))
	}
	switch {
	case raw == "":
		return nil, invalid("url is empty")
	case len(raw) > 2048:
		return nil, invalid("url is longer than 2048 characters")
	case strings.HasPrefix(raw, "-"):
		return nil, invalid("url must not start with '-'")
	case strings.IndexFunc(raw, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0:
		// Printable ASCII only: no whitespace, control, invisible or bidi characters.
		return nil, invalid("url must be printable ASCII without spaces")
	case strings.ContainsAny(raw, "?#"):
		// Tokens travel in queries; neither git form needs one.
		return nil, invalid("url must not have a query or fragment")
	case encodedControlRE.MatchString(raw):
		return nil, invalid("url must not encode control characters")
	}

	var host, user string
	if strings.Contains(raw, "://") {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, invalid("cannot parse url")
		}
		scheme := strings.ToLower(u.Scheme)
		if scheme != "https" && scheme != "http" && scheme != "ssh" {
			return nil, invalid("scheme %q is not allowed; use https, http or ssh", u.Scheme)
		}
		if u.Opaque != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
			return nil, invalid("url must not have a query or fragment")
		}
		if u.User != nil {
			if _, hasPass := u.User.Password(); hasPass || scheme != "ssh" {
				return nil, invalid("credentials in the url are not allowed; put them in the secret")
			}
			user = u.User.Username()
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return nil, invalid("invalid port %q", p)
			}
		}
		if strings.Trim(u.Path, "/") == "" {
			return nil, invalid("url has no repository path")
		}
		// url.Parse decodes the path: %00, %0a and the like must not reach git.
		if strings.IndexFunc(u.Path, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0 {
			return nil, invalid("url path contains control characters")
		}
		host = u.Hostname()
	} else {
		m := scpLikeRE.FindStringSubmatch(raw)
		if m == nil {
			return nil, invalid("must be an https://, http://, ssh:// or user@host:path url")
		}
		user, host = m[1], strings.Trim(m[2], "[]")
		if strings.HasPrefix(m[3], "-") {
			return nil, invalid("repository path must not start with '-'")
		}
	}

	if strings.HasPrefix(user, "-") {
		return nil, invalid("user must not start with '-'")
	}
	if err := validateHost(host, egress); err != nil {
		return nil, err
	}

	ep, err := transport.NewEndpoint(raw)
	if err != nil {
		return nil, invalid("cannot parse url")
	}
	if ep.Protocol != "https" && ep.Protocol != "http" && ep.Protocol != "ssh" {
		return nil, invalid("protocol %q is not allowed", ep.Protocol)
	}
	return ep, nil
}

func validateHost(host string, egress Egress) error {
	if host == "" {
		return fmt.Errorf("%w: url has no host", ErrInvalidURL)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return egress.Check(ip)
	}
	if !hostRE.MatchString(host) {
		return fmt.Errorf("%w: invalid host %q", ErrInvalidURL, host)
	}
	return nil
}

// ValidateBranch checks branch against git's ref-name rules (as
// `git check-ref-format --branch`), so it is safe as refs/heads/<branch> and
// can never be read as a command-line option.
func ValidateBranch(branch string) error {
	invalid := func(reason string) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidBranch, sanitizeBranch(branch), reason)
	}
	switch {
	case branch == "":
		return invalid("branch is empty")
	case len(branch) > 255:
		return invalid("branch is longer than 255 characters")
	case strings.HasPrefix(branch, "-"):
		return invalid("must not start with '-'")
	case branch == "@" || branch == "HEAD":
		return invalid("reserved name")
	case strings.HasPrefix(branch, "/") || strings.HasSuffix(branch, "/"):
		return invalid("must not start or end with '/'")
	case strings.HasSuffix(branch, "."):
		return invalid("must not end with '.'")
	case strings.Contains(branch, ".."), strings.Contains(branch, "@{"), strings.Contains(branch, "//"):
		return invalid("must not contain '..', '@{' or '//'")
	}
	for _, r := range branch {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(" ~^:?*[\\", r) {
			return invalid("must not contain spaces, control characters or any of ~^:?*[\\")
		}
	}
	for _, c := range strings.Split(branch, "/") {
		if strings.HasPrefix(c, ".") || strings.HasSuffix(c, ".lock") {
			return invalid("path components must not start with '.' or end with '.lock'")
		}
	}
	return nil
}

// sanitizeBranch keeps rejected names printable in messages.
func sanitizeBranch(b string) string {
	if len(b) > 64 {
		b = b[:64] + "..."
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, b)
}

// ValidateRevision checks that rev is a full commit id (40 hex digits for
// SHA-1, 64 for SHA-256) and returns it lowercased.
func ValidateRevision(rev string) (string, error) {
	if (len(rev) != 40 && len(rev) != 64) || !hexRE.MatchString(rev) {
		return "", fmt.Errorf("%w %q: must be a full 40 or 64 digit hex commit id", ErrInvalidRevision, sanitizeBranch(rev))
	}
	return strings.ToLower(rev), nil
}

// validatePath checks that p names a file inside the repository: relative,
// already clean, and without ".." components.
func validatePath(p string) error {
	invalid := func(reason string) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidPath, sanitizeBranch(p), reason)
	}
	switch {
	case p == "" || p == ".":
		return invalid("path is empty")
	case len(p) > 4096:
		return invalid("path is too long")
	case strings.HasPrefix(p, "/"):
		return invalid("path must be relative to the repository root")
	case strings.ContainsAny(p, "\\\x00"):
		return invalid("path must use '/' separators and no NUL")
	case path.Clean(p) != p:
		return invalid("path must be clean (no '.', '..', '//' or trailing '/')")
	case p == ".." || strings.HasPrefix(p, "../"):
		return invalid("path must stay inside the repository")
	}
	return nil
}
