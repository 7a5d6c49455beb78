package forge_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/flow-ci/flow-ci/internal/forge"
	"github.com/flow-ci/flow-ci/internal/forgetest"
	"github.com/flow-ci/flow-ci/internal/gitsource"
	"github.com/flow-ci/flow-ci/internal/gittest"
)

// TestPullsOnGitea, on a real Gitea: a pull request from a branch of the repository and
// one from a second user's fork. The API names their targets, authors and which is the
// fork; the repository's ref advertisement has both heads as refs/pull/N/head.
func TestPullsOnGitea(t *testing.T) {
	ctx := context.Background()
	gitea := forgetest.StartGitea(t, "127.0.0.1")
	repoURL := gitea.CreateRepo(t, "app")
	local := gittest.NewRepo(t, map[string]string{"README.md": "hi\n"})
	gitea.Push(t, local.Path, "app", "main")
	own := local.CommitOn(t, "feature", map[string]string{"a.txt": "mine\n"})
	gitea.Push(t, local.Path, "app", "feature")

	mallory := gitea.AddUser(t, "mallory")
	gitea.Fork(t, "app", mallory)
	work := t.TempDir()
	git := func(args ...string) {
		gittest.Git(t, work, append([]string{"-c", "user.name=m", "-c", "user.email=m@example.com"}, args...)...)
	}
	git("clone", "-q", gitea.UserPushURL("mallory", "app"), ".")
	if err := os.WriteFile(filepath.Join(work, "evil.sh"), []byte("env\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("add", "evil.sh")
	git("commit", "-q", "-m", "evil")
	git("push", "-q", "origin", "HEAD:patch")
	forked := gittest.Git(t, work, "rev-parse", "HEAD")[:40]
	gitea.WaitBranch(t, "mallory", "app", "patch", forked)

	ownPR := gitea.OpenPull(t, "app", "feature", "main", gitea.Token)
	forkPR := gitea.OpenPull(t, "app", "mallory:patch", "main", mallory)
	c := &forge.Client{Egress: gitsource.Egress{Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}}
	prs, err := c.ListPulls(ctx, forge.Gitea, gitea.URL, repoURL, gitea.Token)
	if err != nil {
		t.Fatal(err)
	}
	byNumber := map[int]forge.PullRequest{}
	for _, pr := range prs {
		byNumber[pr.Number] = pr
	}
	if got := byNumber[ownPR]; got.Fork || got.Head != own || got.Target != "main" || got.Author != forgetest.User {
		t.Errorf("the repository's own pull request: %+v", got)
	}
	if got := byNumber[forkPR]; !got.Fork || got.Head != forked || got.Author != "mallory" {
		t.Errorf("the fork's pull request: %+v (head %s)", got, forked)
	}
	refs, err := gitsource.ListRefs(ctx, repoURL, nil, gitsource.WithAllowedNetworks(netip.MustParsePrefix("127.0.0.0/8")))
	if err != nil {
		t.Fatal(err)
	}
	if refs.Pulls[ownPR] != own || refs.Pulls[forkPR] != forked {
		t.Errorf("pull heads in the ref advertisement: %v", refs.Pulls)
	}
}
