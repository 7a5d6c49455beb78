package pipeline

import (
	"fmt"
	"regexp"
	"strings"
)

// maxImageRefLen bounds the whole reference, tag and digest included.
const maxImageRefLen = 255

// Grammar of an image reference:
//
//	[host[:port]/]component[/component...][:tag][@sha256:<64 hex>]
var (
	pathComponentRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-*)[a-z0-9]+)*$`)
	hostLabelRE     = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$`)
	portRE          = regexp.MustCompile(`^[0-9]{1,5}$`)
	tagRE           = regexp.MustCompile(`^\w[\w.-]{0,127}$`)
	digestRE        = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// checkImageRef returns why ref is not a well-formed image reference, or ""
// if it is. A bad reference would otherwise only surface as ImagePullBackOff
// long after the run started.
func checkImageRef(ref string) string {
	if len(ref) > maxImageRefLen {
		return fmt.Sprintf("longer than %d characters", maxImageRefLen)
	}
	name := ref
	if at := strings.IndexByte(name, '@'); at >= 0 {
		if !digestRE.MatchString(name[at+1:]) {
			return "digest must be sha256: followed by 64 lowercase hex digits"
		}
		name = name[:at]
	}
	// A colon after the last slash starts the tag; one before it is a
	// registry port.
	if colon := strings.LastIndexByte(name, ':'); colon > strings.LastIndexByte(name, '/') {
		if tag := name[colon+1:]; !tagRE.MatchString(tag) {
			return fmt.Sprintf("invalid tag %s", quote(tag))
		}
		name = name[:colon]
	}
	parts := strings.Split(name, "/")
	// As in Docker, the first component names a registry only if it could
	// not be a repository path: it has a dot or port, or is localhost.
	if len(parts) > 1 && (strings.ContainsAny(parts[0], ".:") || parts[0] == "localhost") {
		if !isRegistryHost(parts[0]) {
			return fmt.Sprintf("invalid registry host %s", quote(parts[0]))
		}
		parts = parts[1:]
	}
	for _, p := range parts {
		if p == "" {
			return "empty repository path component"
		}
		if !pathComponentRE.MatchString(p) {
			return fmt.Sprintf("invalid repository path component %s: only lowercase letters and digits, separated by '.', '_', '__' or dashes", quote(p))
		}
	}
	return ""
}

// isRegistryHost accepts host[:port] with a DNS-style host. IPv6 literals
// are not supported.
func isRegistryHost(s string) bool {
	host, port, hasPort := strings.Cut(s, ":")
	if hasPort && !portRE.MatchString(port) {
		return false
	}
	for _, label := range strings.Split(host, ".") {
		if !hostLabelRE.MatchString(label) {
			return false
		}
	}
	return true
}
