package forge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode"

	"github.com/flow-ci/flow-ci/internal/shorten"
)

// maxDescription is GitHub's limit; it applies to every forge so a run reads
// the same everywhere.
const maxDescription = 140

// Status is one commit status.
type Status struct {
	Commit      string // full SHA
	State       State
	Context     string // e.g. "flow-ci/my-pipeline"
	Description string // truncated to 140 bytes (GitHub's limit) on a UTF-8 boundary
	TargetURL   string // optional link
}

// statusBody is the JSON GitHub and Gitea take.
type statusBody struct {
	State       string `json:"state"`
	TargetURL   string `json:"target_url,omitempty"`
	Description string `json:"description,omitempty"`
	Context     string `json:"context"`
}

// gitlabBody is GitLab's: it calls the context "name".
type gitlabBody struct {
	State       string `json:"state"`
	Name        string `json:"name"`
	TargetURL   string `json:"target_url,omitempty"`
	Description string `json:"description,omitempty"`
}

// Repo extracts the forge project path from a git URL: https, http, ssh, git
// and scp-like (git@host:org/app.git) forms. GitLab subgroups are kept whole.
func Repo(repoURL string) (string, error) {
	loc, err := parseRepo(repoURL)
	if err != nil {
		return "", err
	}
	return loc.path, nil
}

// repoLocation is a git URL reduced to what a status request needs. It holds
// no userinfo: clone URLs may carry credentials, and errors name the host.
type repoLocation struct {
	scheme string
	host   string // lowercased, without port
	path   string // "org/app": no leading or trailing slash, no .git
}

func parseRepo(raw string) (repoLocation, error) {
	var loc repoLocation
	var p string
	if strings.Contains(raw, "://") {
		u, err := url.Parse(raw)
		if err != nil {
			// url.Error repeats the URL, credentials and all.
			return loc, errors.New("repository url does not parse")
		}
		switch u.Scheme {
		case "http", "https", "ssh", "git":
		default:
			return loc, fmt.Errorf("repository url scheme %q is not http, https, ssh or git", u.Scheme)
		}
		if u.Hostname() == "" {
			return loc, errors.New("repository url has no host")
		}
		loc.scheme, loc.host, p = u.Scheme, strings.ToLower(u.Hostname()), u.Path
	} else {
		// scp-like [user@]host:path; git tells it from a local path by a colon
		// before any slash.
		i := strings.IndexByte(raw, ':')
		if i <= 0 || strings.Contains(raw[:i], "/") {
			return loc, errors.New("repository url is neither a url nor an scp-like host:path")
		}
		host := raw[:i]
		if at := strings.LastIndexByte(host, '@'); at >= 0 {
			host = host[at+1:]
		}
		if host == "" {
			return loc, errors.New("repository url has no host")
		}
		loc.scheme, loc.host, p = "ssh", strings.ToLower(host), raw[i+1:]
	}
	path, err := projectPath(p)
	if err != nil {
		return loc, fmt.Errorf("repository url on %s: %w", loc.host, err)
	}
	loc.path = path
	return loc, nil
}

// projectPath cleans a URL path into "owner/name" (or "group/sub/name").
// Dot segments are refused rather than resolved: the path goes into an API
// URL, where ".." would address a different endpoint.
func projectPath(p string) (string, error) {
	p = strings.TrimSuffix(strings.Trim(p, "/"), ".git")
	if p == "" {
		return "", errors.New("project path is empty")
	}
	segs := strings.Split(p, "/")
	for _, s := range segs {
		if s == "" || s == "." || s == ".." {
			return "", fmt.Errorf("project path %q has an empty or dot segment", p)
		}
		if strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
			return "", fmt.Errorf("project path %q has a space or control character", p)
		}
	}
	if len(segs) < 2 {
		return "", fmt.Errorf("project path %q has no owner", p)
	}
	return p, nil
}

// forgeBase is a validated base URL.
type forgeBase struct {
	root string // scheme://host[:port][/escaped/path], no trailing slash
	host string // lowercased, without port
	path string // decoded root path, for stripping it from clone URLs
}

// parseBase validates baseURL. For Gitea and GitLab the base is the forge's
// root, and a trailing /api/v1 or /api/v4 is dropped so it is not doubled; for
// GitHub it is the API root (https://api.github.com, https://ghe/api/v3).
func parseBase(p Provider, baseURL string) (forgeBase, error) {
	var b forgeBase
	if strings.ContainsAny(baseURL, "?#") {
		return b, errors.New("base url may not have a query or fragment")
	}
	u, err := url.Parse(baseURL)
	if err != nil {
		return b, errors.New("base url does not parse")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return b, fmt.Errorf("base url scheme %q is not http or https", u.Scheme)
	}
	if u.User != nil {
		// The token travels in a header; userinfo would be a second credential
		// that ends up in logs.
		return b, errors.New("base url may not carry user info")
	}
	if u.Host == "" || u.Hostname() == "" || u.Opaque != "" {
		return b, errors.New("base url has no host")
	}
	for _, s := range strings.Split(u.Path, "/") {
		if s == "." || s == ".." {
			return b, errors.New("base url path has a dot segment")
		}
	}
	escaped := strings.TrimRight(u.EscapedPath(), "/")
	switch p {
	case Gitea:
		escaped = strings.TrimSuffix(escaped, "/api/v1")
	case GitLab:
		escaped = strings.TrimSuffix(escaped, "/api/v4")
	}
	path, err := url.PathUnescape(escaped)
	if err != nil {
		return b, errors.New("base url path is badly escaped")
	}
	return forgeBase{root: u.Scheme + "://" + u.Host + escaped, host: strings.ToLower(u.Hostname()), path: strings.Trim(path, "/")}, nil
}

// NewRequest builds the request that posts s for the repository at repoURL.
// It is pure: it checks its inputs and does no I/O. Errors never contain the
// token.
func NewRequest(ctx context.Context, p Provider, baseURL, repoURL, token string, s Status) (*http.Request, error) {
	state, err := forgeState(p, s.State)
	if err != nil {
		return nil, err
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	t, err := apiTarget(p, baseURL, repoURL, token)
	if err != nil {
		return nil, err
	}
	base, segs, project := t.base, t.segs, t.project

	var (
		endpoint string
		body     any
		header   = http.Header{}
	)
	desc := shorten.Head(s.Description, maxDescription)
	switch p {
	case GitHub:
		endpoint = base.root + "/repos/" + escapeSegments(segs) + "/statuses/" + s.Commit
		body = statusBody{State: state, TargetURL: s.TargetURL, Description: desc, Context: s.Context}
	case Gitea:
		endpoint = base.root + "/api/v1/repos/" + escapeSegments(segs) + "/statuses/" + s.Commit
		body = statusBody{State: state, TargetURL: s.TargetURL, Description: desc, Context: s.Context}
	case GitLab:
		// GitLab takes the whole project path as one escaped segment.
		endpoint = base.root + "/api/v4/projects/" + url.PathEscape(project) + "/statuses/" + s.Commit
		body = gitlabBody{State: state, Name: s.Context, TargetURL: s.TargetURL, Description: desc}
	}
	setAuth(p, header, token)
	header.Set("Content-Type", "application/json")
	header.Set("User-Agent", "flow-ci")

	buf, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode status: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(buf))
	if err != nil {
		return nil, fmt.Errorf("build status request for %s: %w", base.host, err)
	}
	req.Header = header
	return req, nil
}

// target is where a repository's API lives on a forge.
type target struct {
	base    forgeBase
	segs    []string // owner/name, for GitHub and Gitea
	project string   // the whole path, for GitLab
}

// apiTarget checks a forge's base URL, a repository URL and a token, and finds the
// repository's API path.
func apiTarget(p Provider, baseURL, repoURL, token string) (target, error) {
	base, err := parseBase(p, baseURL)
	if err != nil {
		return target{}, err
	}
	loc, err := parseRepo(repoURL)
	if err != nil {
		return target{}, err
	}
	if err := checkToken(token); err != nil {
		return target{}, err
	}
	project := loc.path
	if p != GitHub && base.path != "" && loc.host == base.host && (loc.scheme == "http" || loc.scheme == "https") {
		// A forge served under a sub-path (http://host/gitea/org/app.git) has
		// that prefix in its http clone URLs but not in its API's project paths.
		project = strings.TrimPrefix(project, base.path+"/")
	}
	segs := strings.Split(project, "/")
	if p != GitLab && len(segs) != 2 {
		return target{}, fmt.Errorf("%s project %q is not owner/name", p, project)
	}
	if len(segs) < 2 {
		return target{}, fmt.Errorf("%s project %q has no owner", p, project)
	}
	return target{base: base, segs: segs, project: project}, nil
}

// setAuth puts the token where the forge looks for it.
func setAuth(p Provider, header http.Header, token string) {
	switch p {
	case GitHub:
		header.Set("Authorization", "Bearer "+token)
		header.Set("Accept", "application/vnd.github+json")
		header.Set("X-GitHub-Api-Version", "2022-11-28")
	case Gitea:
		header.Set("Authorization", "token "+token)
		header.Set("Accept", "application/json")
	case GitLab:
		header.Set("PRIVATE-TOKEN", token)
		header.Set("Accept", "application/json")
	}
	header.Set("User-Agent", "flow-ci")
}

func escapeSegments(segs []string) string {
	out := make([]string, len(segs))
	for i, s := range segs {
		out[i] = url.PathEscape(s)
	}
	return strings.Join(out, "/")
}

// check refuses what a forge would reject, or what would change the request's
// path: the commit goes into the URL unescaped.
func (s Status) check() error {
	if n := len(s.Commit); n != 40 && n != 64 {
		return fmt.Errorf("commit %q is not a full SHA-1 or SHA-256", s.Commit)
	}
	for _, c := range s.Commit {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return fmt.Errorf("commit %q is not hexadecimal", s.Commit)
		}
	}
	if s.Context == "" {
		// Every forge would file it under "default", mixing pipelines.
		return errors.New("status context is empty")
	}
	if s.TargetURL != "" {
		u, err := url.Parse(s.TargetURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("target url is not an absolute http or https url")
		}
		if u.User != nil {
			// The link is shown to everyone who can see the commit.
			return errors.New("target url may not carry user info")
		}
	}
	return nil
}

// checkToken refuses a token a header cannot carry. It never echoes the token.
func checkToken(token string) error {
	if token == "" {
		return errors.New("forge token is empty")
	}
	for i := 0; i < len(token); i++ {
		if token[i] <= ' ' || token[i] >= 0x7f {
			return errors.New("forge token has a space, control or non-ASCII character")
		}
	}
	return nil
}
