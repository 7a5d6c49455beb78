package forge

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Bounds on listing a repository's open pull requests: pages of pullsPerPage, at most
// maxPullPages of them (so at most 250 open pull requests are built), each read up to
// maxPullPage bytes (a pull request's JSON is a few KiB, with both repositories).
const (
	pullsPerPage = 50
	maxPullPages = 5
	maxPullPage  = 4 << 20
)

// PullRequest is an open pull request (GitHub, Gitea) or merge request (GitLab), as its
// forge's API describes it: what a ref advertisement cannot tell.
type PullRequest struct {
	// Number is the pull request's number (a merge request's iid).
	Number int
	// Head is its head commit, as the API last saw it; the ref advertisement is newer.
	Head string
	// Target is the branch it would merge into.
	Target string
	// Author is its author's login.
	Author string
	// Fork says its head lives in another repository than the target's.
	Fork bool
	// HeadBranch is the branch of the head, in its repository.
	HeadBranch string
}

// NewListPullsRequest builds the request for page (from 1) of the repository's open
// pull requests. It is pure, like NewRequest.
func NewListPullsRequest(ctx context.Context, p Provider, baseURL, repoURL, token string, page int) (*http.Request, error) {
	t, err := apiTarget(p, baseURL, repoURL, token)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	var endpoint string
	switch p {
	case GitHub:
		endpoint = t.base.root + "/repos/" + escapeSegments(t.segs) + "/pulls"
		q.Set("state", "open")
		q.Set("per_page", strconv.Itoa(pullsPerPage))
	case Gitea:
		endpoint = t.base.root + "/api/v1/repos/" + escapeSegments(t.segs) + "/pulls"
		q.Set("state", "open")
		q.Set("limit", strconv.Itoa(pullsPerPage))
	case GitLab:
		endpoint = t.base.root + "/api/v4/projects/" + url.PathEscape(t.project) + "/merge_requests"
		q.Set("state", "opened")
		q.Set("per_page", strconv.Itoa(pullsPerPage))
	default:
		return nil, fmt.Errorf("unknown forge provider %q", p)
	}
	q.Set("page", strconv.Itoa(page))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"?"+q.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("build pull request list request for %s: %w", t.base.host, err)
	}
	setAuth(p, req.Header, token)
	return req, nil
}

// githubPull is the part of a GitHub or Gitea pull request that flow-ci reads.
type githubPull struct {
	Number int `json:"number"`
	User   struct {
		Login string `json:"login"`
	} `json:"user"`
	Head struct {
		SHA  string     `json:"sha"`
		Ref  string     `json:"ref"`
		Repo *repoNamed `json:"repo"`
	} `json:"head"`
	Base struct {
		Ref  string     `json:"ref"`
		Repo *repoNamed `json:"repo"`
	} `json:"base"`
}

type repoNamed struct {
	FullName string `json:"full_name"`
}

// gitlabMR is the part of a GitLab merge request that flow-ci reads.
type gitlabMR struct {
	IID    int    `json:"iid"`
	SHA    string `json:"sha"`
	From   string `json:"source_branch"`
	Target string `json:"target_branch"`
	Source int64  `json:"source_project_id"`
	Into   int64  `json:"target_project_id"`
	Author struct {
		Username string `json:"username"`
	} `json:"author"`
}

// ParsePulls reads one page of a list of open pull requests. A head whose repository
// the API does not name (a deleted fork) counts as a fork.
func ParsePulls(p Provider, body []byte) ([]PullRequest, error) {
	var out []PullRequest
	switch p {
	case GitLab:
		var mrs []gitlabMR
		if err := json.Unmarshal(body, &mrs); err != nil {
			return nil, fmt.Errorf("%s merge requests: %w", p, err)
		}
		for _, m := range mrs {
			out = append(out, PullRequest{Number: m.IID, Head: m.SHA, Target: m.Target, Author: m.Author.Username, Fork: m.Source != m.Into, HeadBranch: m.From})
		}
	default:
		var prs []githubPull
		if err := json.Unmarshal(body, &prs); err != nil {
			return nil, fmt.Errorf("%s pull requests: %w", p, err)
		}
		for _, pr := range prs {
			fork := pr.Head.Repo == nil || pr.Base.Repo == nil || !strings.EqualFold(pr.Head.Repo.FullName, pr.Base.Repo.FullName)
			out = append(out, PullRequest{Number: pr.Number, Head: pr.Head.SHA, Target: pr.Base.Ref, Author: pr.User.Login, Fork: fork, HeadBranch: pr.Head.Ref})
		}
	}
	for _, pr := range out {
		if pr.Number <= 0 || pr.Target == "" {
			return nil, fmt.Errorf("%s: a pull request without a number or target branch", p)
		}
	}
	return out, nil
}

// ListPulls lists the repository's open pull requests, page by page, with the same
// egress policy, timeout, no redirects and scrubbed errors as Post, reading at most
// maxPullPage bytes a page and maxPullPages pages. More open pull requests than that is
// an error that says so, rather than a list that silently leaves some out.
func (c *Client) ListPulls(ctx context.Context, p Provider, baseURL, repoURL, token string) ([]PullRequest, error) {
	var all []PullRequest
	for page := 1; page <= maxPullPages+1; page++ {
		prs, err := c.listPage(ctx, p, baseURL, repoURL, token, page)
		if err != nil {
			return nil, err
		}
		if page > maxPullPages && len(prs) > 0 {
			return nil, fmt.Errorf("list %s pull requests: %w: more than %d are open", p, ErrPermanent, maxPullPages*pullsPerPage)
		}
		all = append(all, prs...)
		if len(prs) < pullsPerPage {
			break
		}
	}
	return all, nil
}

func (c *Client) listPage(ctx context.Context, p Provider, baseURL, repoURL, token string, page int) ([]PullRequest, error) {
	callCtx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	if strings.HasPrefix(strings.ToLower(baseURL), "http://") {
		callCtx = context.WithValue(callCtx, plainHTTP{}, true)
	}
	req, err := NewListPullsRequest(callCtx, p, baseURL, repoURL, token, page)
	if err != nil {
		return nil, fmt.Errorf("list %s pull requests: %w: %w", p, ErrPermanent, err)
	}
	where := fmt.Sprintf("list %s pull requests on %s", p, req.URL.Host)
	resp, err := c.client().Do(req)
	if err != nil {
		return nil, c.transportError(ctx, where, err, token)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPullPage+1))
	if err != nil {
		return nil, c.transportError(ctx, where, err, token)
	}
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return nil, statusError(p, where, resp, body, token)
	}
	if len(body) > maxPullPage {
		return nil, fmt.Errorf("%s: %w: a page is larger than %d bytes", where, ErrPermanent, maxPullPage)
	}
	prs, err := ParsePulls(p, body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", where, ErrPermanent, err)
	}
	return prs, nil
}
