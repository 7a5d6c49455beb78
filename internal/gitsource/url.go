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
	scpLikeRE = regexp.MustCompile(`^([A-Za-z0-9._~+-]+)@([A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]):(.+)$`)
	hostRE    = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9._-]*)$`)
	hexRE     = regexp.MustCompile(`^[0-9a-fA-F]+$`)
)

// ValidateURL checks that repoURL is an allowed remote: https://, http://,
// ssh:// or scp-like user@host:path, with no credentials in it, nothing
// option-like, and no link-local/metadata IP literal as host. It does no DNS
// lookups; resolved addresses are checked when dialling.
func ValidateURL(repoURL string) error {
	_, err := parseURL(repoURL, false)
	return err
}

// parseURL validates repoURL and returns go-git's endpoint for it. Error
// messages never echo the URL: a rejected one may carry credentials.
func parseURL(raw string, allowLinkLocal bool) (*transport.Endpoint, error) {
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
	case strings.IndexFunc(raw, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return nil, invalid("url contains whitespace or control characters")
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
	if err := validateHost(host, allowLinkLocal); err != nil {
		return nil, invalid("%s", err.Error())
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

func validateHost(host string, allowLinkLocal bool) error {
	if host == "" {
		return fmt.Errorf("url has no host")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !allowLinkLocal && isLinkLocalOrMetadata(ip) {
			return errLinkLocal
		}
		return nil
	}
	if !hostRE.MatchString(host) {
		return fmt.Errorf("invalid host %q", host)
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
