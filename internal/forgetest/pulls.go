package forgetest

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flow-ci/flow-ci/internal/gittest"
)

// UserPassword is the password of the users AddUser creates.
const UserPassword = "flowci-test-password-2"

// AddUser creates a user who is not an admin and returns an API token of theirs.
func (g *Gitea) AddUser(t testing.TB, name string) string {
	t.Helper()
	g.call(t, http.MethodPost, "/api/v1/admin/users", true, map[string]any{
		"username": name, "email": name + "@flowci.dev", "password": UserPassword, "must_change_password": false}, nil)
	var tok struct {
		SHA1 string `json:"sha1"`
	}
	g.callAs(t, http.MethodPost, "/api/v1/users/"+name+"/tokens", func(r *http.Request) { r.SetBasicAuth(name, UserPassword) },
		map[string]any{"name": "t", "scopes": []string{"write:repository", "write:user"}}, &tok)
	return tok.SHA1
}

// Fork forks User's repo into the account of token's user.
func (g *Gitea) Fork(t testing.TB, repo, token string) {
	t.Helper()
	g.callAs(t, http.MethodPost, "/api/v1/repos/"+User+"/"+repo+"/forks", bearer(token), map[string]any{}, nil)
}

// UserPushURL is the clone URL of name's repo with name's credentials, for git push.
func (g *Gitea) UserPushURL(name, repo string) string {
	return strings.Replace(g.URL, "://", "://"+name+":"+UserPassword+"@", 1) + "/" + name + "/" + repo + ".git"
}

// OpenPull opens a pull request into base of User's repo, as token's user, from head
// ("branch" in the same repository, "owner:branch" from a fork), and returns its number.
func (g *Gitea) OpenPull(t testing.TB, repo, head, base, token string) int {
	t.Helper()
	var pr struct {
		Number int `json:"number"`
	}
	g.callAs(t, http.MethodPost, "/api/v1/repos/"+User+"/"+repo+"/pulls", bearer(token),
		map[string]any{"head": head, "base": base, "title": "change " + head}, &pr)
	return pr.Number
}

// ClosePull closes a pull request.
func (g *Gitea) ClosePull(t testing.TB, repo string, number int) {
	t.Helper()
	g.call(t, http.MethodPatch, "/api/v1/repos/"+User+"/"+repo+"/pulls/"+strconv.Itoa(number), false, map[string]any{"state": "closed"}, nil)
}

func bearer(token string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "token "+token) }
}

// PushTo commits files on branch of owner's repo (a fork, pushed with owner's password;
// or User's own) through a fresh clone, and returns the new commit.
func (g *Gitea) PushTo(t testing.TB, owner, repo, branch string, files map[string]string) string {
	t.Helper()
	push := g.UserPushURL(owner, repo)
	if owner == User {
		push = g.PushURL(repo)
	}
	work := t.TempDir()
	git := func(args ...string) string {
		return strings.TrimSpace(gittest.Git(t, work, append([]string{"-c", "user.name=" + owner, "-c", "user.email=" + owner + "@flowci.dev"}, args...)...))
	}
	git("clone", "-q", push, ".")
	if git("branch", "-a", "--list", "origin/"+branch, "-r") != "" {
		git("checkout", "-q", branch)
	} else {
		git("checkout", "-q", "-b", branch)
	}
	for name, content := range files {
		p := filepath.Join(work, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git("add", "-A")
	git("commit", "-q", "-m", "change "+branch)
	git("push", "-q", "origin", "HEAD:refs/heads/"+branch)
	head := git("rev-parse", "HEAD")
	g.WaitBranch(t, owner, repo, branch, head)
	return head
}

// Push pushes branch of the local repository in dir to User's repo, and waits until
// Gitea has taken the push in.
func (g *Gitea) Push(t testing.TB, dir, repo, branch string) string {
	t.Helper()
	gittest.Git(t, dir, "push", "--quiet", g.PushURL(repo), branch)
	head := strings.TrimSpace(gittest.Git(t, dir, "rev-parse", branch))
	g.WaitBranch(t, User, repo, branch, head)
	return head
}

// WaitBranch waits until Gitea's API shows branch of owner's repo at commit. Gitea takes
// a push in through a queue: until then the repository may still count as empty (its
// pull requests answer 404) and the branch is missing from its API, so a test that opens
// a pull request right after a push would race it.
func (g *Gitea) WaitBranch(t testing.TB, owner, repo, branch, commit string) {
	t.Helper()
	var got struct {
		Commit struct {
			ID string `json:"id"`
		} `json:"commit"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, err := http.NewRequest(http.MethodGet, g.URL+"/api/v1/repos/"+owner+"/"+repo+"/branches/"+branch, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "token "+g.Token)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			if resp.StatusCode == http.StatusOK {
				err = json.NewDecoder(resp.Body).Decode(&got)
			}
			_ = resp.Body.Close()
			if got.Commit.ID == commit {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gitea: %s/%s branch %s not at %s after 30 s (at %q, %v)", owner, repo, branch, commit, got.Commit.ID, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
