package forge

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNewListPullsRequest(t *testing.T) {
	for _, tt := range []struct {
		p             Provider
		base, repo    string
		wantURL, auth string
	}{
		{GitHub, "https://api.github.com", "https://github.com/org/app.git",
			"https://api.github.com/repos/org/app/pulls?page=2&per_page=50&state=open", "Bearer tok-1234"},
		{Gitea, "https://gitea.example/api/v1", "https://gitea.example/org/app.git",
			"https://gitea.example/api/v1/repos/org/app/pulls?limit=50&page=2&state=open", "token tok-1234"},
		{GitLab, "https://gitlab.example", "git@gitlab.example:group/sub/app.git",
			"https://gitlab.example/api/v4/projects/group%2Fsub%2Fapp/merge_requests?page=2&per_page=50&state=opened", ""},
	} {
		req, err := NewListPullsRequest(context.Background(), tt.p, tt.base, tt.repo, "tok-1234", 2)
		if err != nil {
			t.Fatalf("%s: %v", tt.p, err)
		}
		if req.Method != "GET" || req.URL.String() != tt.wantURL {
			t.Errorf("%s: %s %s, want GET %s", tt.p, req.Method, req.URL, tt.wantURL)
		}
		if got := req.Header.Get("Authorization"); got != tt.auth {
			t.Errorf("%s: Authorization %q, want %q", tt.p, got, tt.auth)
		}
	}
	if _, err := NewListPullsRequest(context.Background(), Gitea, "https://u:p@gitea.example", "https://gitea.example/o/a.git", "tok-1234", 1); err == nil {
		t.Error("a base URL with user info was accepted")
	}
}

func TestParsePulls(t *testing.T) {
	const gitea = `[
 {"number": 3, "user": {"login": "alice"}, "head": {"sha": "aaa", "repo": {"full_name": "org/app"}}, "base": {"ref": "main", "repo": {"full_name": "org/app"}}},
 {"number": 4, "user": {"login": "mallory"}, "head": {"sha": "bbb", "repo": {"full_name": "mallory/app"}}, "base": {"ref": "main", "repo": {"full_name": "org/app"}}},
 {"number": 5, "user": {"login": "gone"}, "head": {"sha": "ccc", "repo": null}, "base": {"ref": "release/1", "repo": {"full_name": "org/app"}}}
]`
	got, err := ParsePulls(Gitea, []byte(gitea))
	if err != nil {
		t.Fatal(err)
	}
	want := []PullRequest{
		{Number: 3, Head: "aaa", Target: "main", Author: "alice"},
		{Number: 4, Head: "bbb", Target: "main", Author: "mallory", Fork: true},
		{Number: 5, Head: "ccc", Target: "release/1", Author: "gone", Fork: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("gitea (-want +got):\n%s", diff)
	}
	const gitlab = `[{"iid": 7, "sha": "ddd", "target_branch": "main", "source_project_id": 9, "target_project_id": 9, "author": {"username": "bob"}},
 {"iid": 8, "sha": "eee", "target_branch": "main", "source_project_id": 10, "target_project_id": 9, "author": {"username": "eve"}}]`
	got, err = ParsePulls(GitLab, []byte(gitlab))
	if err != nil {
		t.Fatal(err)
	}
	want = []PullRequest{{Number: 7, Head: "ddd", Target: "main", Author: "bob"}, {Number: 8, Head: "eee", Target: "main", Author: "eve", Fork: true}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("gitlab (-want +got):\n%s", diff)
	}
	for _, bad := range []string{`{}`, `[{"number": 0, "base": {"ref": "main"}}]`, `[{"number": 1}]`, `not json`} {
		if _, err := ParsePulls(GitHub, []byte(bad)); err == nil || strings.Contains(err.Error(), "tok") {
			t.Errorf("%s: err %v, want an error", bad, err)
		}
	}
}
