package forge

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flow-ci/flow-ci/internal/shorten"
)

const sha = "0123456789abcdef0123456789abcdef01234567"

func TestRepo(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in      string
		want    string
		wantErr string
	}{
		{in: "https://git.example/org/app.git", want: "org/app"},
		{in: "http://git.example:3000/org/app.git", want: "org/app"},
		{in: "https://user:pw@git.example/org/app.git", want: "org/app"},
		{in: "ssh://git@git.example/org/app.git", want: "org/app"},
		{in: "ssh://git@git.example:2222/org/app.git", want: "org/app"},
		{in: "git@git.example:org/app.git", want: "org/app"},
		{in: "git.example:org/app", want: "org/app"},
		{in: "https://gitlab.example/g/sub/app.git", want: "g/sub/app"},
		{in: "https://git.example/org/app/", want: "org/app"},
		{in: "https://git.example/org/app.git/", want: "org/app"},
		{in: "https://git.example/org/app", want: "org/app"},
		{in: "", wantErr: "neither a url"},
		{in: "/srv/git/app.git", wantErr: "neither a url"},
		{in: "./app", wantErr: "neither a url"},
		{in: "https://git.example/", wantErr: "empty"},
		{in: "https://git.example/.git", wantErr: "empty"},
		{in: "git@git.example:", wantErr: "empty"},
		{in: "https://git.example/app.git", wantErr: "no owner"},
		{in: "https://git.example/org/../app", wantErr: "dot segment"},
		{in: "https://git.example/org/%2e%2e/app", wantErr: "dot segment"},
		{in: "git@git.example:org/../../app", wantErr: "dot segment"},
		{in: "https://git.example/org//app", wantErr: "dot segment"},
		{in: "git@git.example:org/a pp", wantErr: "space"},
		{in: "ftp://git.example/org/app", wantErr: "scheme"},
		{in: "https:///org/app", wantErr: "no host"},
		{in: "@:org/app", wantErr: "no host"},
		{in: "https://user:pw@git.example/%zz/app", wantErr: "does not parse"},
	}
	for _, tc := range cases {
		got, err := Repo(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Repo(%q) = %q, %v; want error containing %q", tc.in, got, err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "pw") {
				t.Errorf("Repo(%q) error leaks the password: %v", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Repo(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestNewRequest(t *testing.T) {
	t.Parallel()
	ok := Status{Commit: sha, State: StateSuccess, Context: "flow-ci/build", Description: "all green", TargetURL: "https://ci.example/runs/1"}
	with := func(f func(*Status)) Status { s := ok; f(&s); return s }
	long := strings.Repeat("a", 139) + "é" // 141 bytes; the rune must not be split
	euro := strings.Repeat("a", 138) + "€" // 141 bytes
	exact := strings.Repeat("b", 140)

	type want struct {
		url    string
		header map[string]string
		body   map[string]any
	}
	cases := []struct {
		name    string
		p       Provider
		base    string
		repo    string
		s       Status
		want    want
		wantErr string
	}{
		{
			name: "github", p: GitHub, base: "https://api.github.com", repo: "https://github.com/org/app.git", s: ok,
			want: want{
				url:    "https://api.github.com/repos/org/app/statuses/" + sha,
				header: map[string]string{"Authorization": "Bearer tok", "Accept": "application/vnd.github+json", "Content-Type": "application/json"},
				body:   map[string]any{"state": "success", "context": "flow-ci/build", "description": "all green", "target_url": "https://ci.example/runs/1"},
			},
		},
		{
			name: "github enterprise, running is pending", p: GitHub, base: "https://ghe.example/api/v3/", repo: "git@ghe.example:org/app.git",
			s: with(func(s *Status) { s.State = StateRunning; s.TargetURL = ""; s.Description = "" }),
			want: want{
				url:    "https://ghe.example/api/v3/repos/org/app/statuses/" + sha,
				header: map[string]string{"Authorization": "Bearer tok"},
				body:   map[string]any{"state": "pending", "context": "flow-ci/build"},
			},
		},
		{
			name: "github error", p: GitHub, base: "https://api.github.com", repo: "https://github.com/org/app", s: with(func(s *Status) { s.State = StateError }),
			want: want{url: "https://api.github.com/repos/org/app/statuses/" + sha, body: map[string]any{"state": "error", "context": "flow-ci/build", "description": "all green", "target_url": "https://ci.example/runs/1"}},
		},
		{
			name: "gitea, running is pending", p: Gitea, base: "http://10.88.0.1:3000", repo: "http://10.88.0.1:3000/org/app.git",
			s: with(func(s *Status) { s.State = StateRunning }),
			want: want{
				url:    "http://10.88.0.1:3000/api/v1/repos/org/app/statuses/" + sha,
				header: map[string]string{"Authorization": "token tok", "Content-Type": "application/json"},
				body:   map[string]any{"state": "pending", "context": "flow-ci/build", "description": "all green", "target_url": "https://ci.example/runs/1"},
			},
		},
		{
			name: "gitea base with /api/v1 is not doubled", p: Gitea, base: "http://10.88.0.1:3000/api/v1/", repo: "git@10.88.0.1:org/app.git",
			s:    with(func(s *Status) { s.State = StateFailure }),
			want: want{url: "http://10.88.0.1:3000/api/v1/repos/org/app/statuses/" + sha, body: map[string]any{"state": "failure", "context": "flow-ci/build", "description": "all green", "target_url": "https://ci.example/runs/1"}},
		},
		{
			name: "gitea under a sub-path", p: Gitea, base: "https://forge.example/gitea", repo: "https://forge.example/gitea/org/app.git", s: ok,
			want: want{url: "https://forge.example/gitea/api/v1/repos/org/app/statuses/" + sha},
		},
		{
			name: "gitlab subgroup, failure is failed", p: GitLab, base: "https://gitlab.example", repo: "https://gitlab.example/g/sub/app.git",
			s: with(func(s *Status) { s.State = StateFailure }),
			want: want{
				url:    "https://gitlab.example/api/v4/projects/g%2Fsub%2Fapp/statuses/" + sha,
				header: map[string]string{"Private-Token": "tok", "Authorization": "", "Content-Type": "application/json"},
				body:   map[string]any{"state": "failed", "name": "flow-ci/build", "description": "all green", "target_url": "https://ci.example/runs/1"},
			},
		},
		{
			name: "gitlab error is canceled", p: GitLab, base: "https://gitlab.example/api/v4", repo: "git@gitlab.example:g/app.git",
			s:    with(func(s *Status) { s.State = StateError; s.TargetURL = "" }),
			want: want{url: "https://gitlab.example/api/v4/projects/g%2Fapp/statuses/" + sha, body: map[string]any{"state": "canceled", "name": "flow-ci/build", "description": "all green"}},
		},
		{
			name: "gitlab running stays running", p: GitLab, base: "https://gitlab.example", repo: "https://gitlab.example/g/app", s: with(func(s *Status) { s.State = StateRunning; s.Description = "" }),
			want: want{body: map[string]any{"state": "running", "name": "flow-ci/build", "target_url": "https://ci.example/runs/1"}},
		},
		{
			name: "description cut before a two-byte rune", p: GitHub, base: "https://api.github.com", repo: "https://github.com/o/r", s: with(func(s *Status) { s.Description = long }),
			want: want{body: map[string]any{"state": "success", "context": "flow-ci/build", "description": strings.Repeat("a", 139), "target_url": "https://ci.example/runs/1"}},
		},
		{
			name: "description cut before a three-byte rune", p: GitLab, base: "https://gitlab.example", repo: "https://gitlab.example/o/r", s: with(func(s *Status) { s.Description = euro }),
			want: want{body: map[string]any{"state": "success", "name": "flow-ci/build", "description": strings.Repeat("a", 138), "target_url": "https://ci.example/runs/1"}},
		},
		{
			name: "description of exactly 140 bytes kept", p: Gitea, base: "https://gitea.example", repo: "https://gitea.example/o/r", s: with(func(s *Status) { s.Description = exact }),
			want: want{body: map[string]any{"state": "success", "context": "flow-ci/build", "description": exact, "target_url": "https://ci.example/runs/1"}},
		},
		{name: "unknown provider", p: "bitbucket", base: "https://x.example", repo: "https://x.example/o/r", s: ok, wantErr: "unknown forge provider"},
		{name: "unknown state", p: GitHub, base: "https://api.github.com", repo: "https://github.com/o/r", s: with(func(s *Status) { s.State = "warning" }), wantErr: "unknown commit status state"},
		{name: "ftp base", p: GitHub, base: "ftp://api.github.com", repo: "https://github.com/o/r", s: ok, wantErr: "scheme"},
		{name: "empty base", p: GitHub, base: "", repo: "https://github.com/o/r", s: ok, wantErr: "scheme"},
		{name: "relative base", p: Gitea, base: "/api/v1", repo: "https://github.com/o/r", s: ok, wantErr: "scheme"},
		{name: "base with user info", p: Gitea, base: "https://admin:pw@gitea.example", repo: "https://gitea.example/o/r", s: ok, wantErr: "user info"},
		{name: "base with query", p: GitLab, base: "https://gitlab.example?x=1", repo: "https://gitlab.example/o/r", s: ok, wantErr: "query"},
		{name: "base with fragment", p: GitLab, base: "https://gitlab.example/#", repo: "https://gitlab.example/o/r", s: ok, wantErr: "fragment"},
		{name: "base without host", p: GitHub, base: "https:///api", repo: "https://github.com/o/r", s: ok, wantErr: "no host"},
		{name: "base with dot segment", p: GitHub, base: "https://api.github.com/x/..", repo: "https://github.com/o/r", s: ok, wantErr: "dot segment"},
		{name: "github subgroup refused", p: GitHub, base: "https://api.github.com", repo: "https://github.com/g/sub/app", s: ok, wantErr: "not owner/name"},
		{name: "short commit", p: GitHub, base: "https://api.github.com", repo: "https://github.com/o/r", s: with(func(s *Status) { s.Commit = "abc123" }), wantErr: "full SHA"},
		{name: "commit with a path", p: GitHub, base: "https://api.github.com", repo: "https://github.com/o/r", s: with(func(s *Status) { s.Commit = "../../../../" + sha[12:] }), wantErr: "hexadecimal"},
		{name: "empty context", p: GitHub, base: "https://api.github.com", repo: "https://github.com/o/r", s: with(func(s *Status) { s.Context = "" }), wantErr: "context"},
		{name: "target url not http", p: GitHub, base: "https://api.github.com", repo: "https://github.com/o/r", s: with(func(s *Status) { s.TargetURL = "javascript:alert(1)" }), wantErr: "target url"},
		{name: "target url with user info", p: GitHub, base: "https://api.github.com", repo: "https://github.com/o/r", s: with(func(s *Status) { s.TargetURL = "https://u:p@ci.example/" }), wantErr: "target url"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, err := NewRequest(context.Background(), tc.p, tc.base, tc.repo, "tok", tc.s)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v; want one containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "pw") {
					t.Errorf("error leaks the base url's password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if req.Method != "POST" {
				t.Errorf("method = %s; want POST", req.Method)
			}
			if tc.want.url != "" && req.URL.String() != tc.want.url {
				t.Errorf("url = %s; want %s", req.URL, tc.want.url)
			}
			for k, v := range tc.want.header {
				if got := req.Header.Get(k); got != v {
					t.Errorf("header %s = %q; want %q", k, got, v)
				}
			}
			if tc.want.body != nil {
				raw, _ := io.ReadAll(req.Body)
				var got map[string]any
				if err := json.Unmarshal(raw, &got); err != nil {
					t.Fatalf("body %s: %v", raw, err)
				}
				if diff := cmp.Diff(tc.want.body, got); diff != "" {
					t.Errorf("body (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestNewRequestToken(t *testing.T) {
	t.Parallel()
	s := Status{Commit: sha, State: StatePending, Context: "c"}
	for _, tok := range []string{"", "tok SECRET", "tok\r\nX-Evil: SECRET", "tökSECRET"} {
		_, err := NewRequest(context.Background(), GitHub, "https://api.github.com", "https://github.com/o/r", tok, s)
		if err == nil {
			t.Errorf("token %q accepted", tok)
			continue
		}
		if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("error echoes the token: %v", err)
		}
	}
}

func TestTruncateUTF8(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 5, "hello"},
		{"hello", 4, "hell"},
		{"héllo", 2, "h"},
		{"€", 2, ""},
		{"a\xffb", 10, "a\uFFFDb"},
	}
	for _, tc := range cases {
		if got := shorten.Head(tc.in, tc.n); got != tc.want {
			t.Errorf("shorten.Head(%q, %d) = %q; want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
