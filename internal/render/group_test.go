package render

import "testing"

func TestGroupKey(t *testing.T) {
	same := []string{
		"https://github.com/Org/Repo.git",
		"https://GitHub.com/Org/Repo",
		"https://github.com/Org/Repo/",
		"HTTPS://github.com/Org/Repo",
		"https://github.com:443/Org/Repo",
	}
	want := GroupKey(same[0], "main")
	for _, u := range same[1:] {
		if got := GroupKey(u, "main"); got != want {
			t.Errorf("%s: group %s, want %s (normalised %q vs %q)", u, got, want, NormalizeRepoURL(u), NormalizeRepoURL(same[0]))
		}
	}
	different := []string{"https://github.com/Org/Other.git", "https://gitlab.com/Org/Repo.git", "https://github.com/org/repo.git", "http://10.88.0.1:8418/Org/Repo.git",
		"http://github.com/Org/Repo.git", "ssh://git@github.com/Org/Repo.git"}
	for _, u := range different {
		if GroupKey(u, "main") == want {
			t.Errorf("%s shares the group of %s", u, same[0])
		}
	}
	if GroupKey(same[0], "dev") == want {
		t.Error("branches share a group")
	}
	// ssh:// and the scp-like form are one transport.
	if GroupKey("ssh://git@github.com/Org/Repo.git", "main") != GroupKey("git@github.com:Org/Repo.git", "main") {
		t.Error("ssh:// and scp-like forms differ")
	}
	// The separator keeps a branch from posing as part of the path.
	if GroupKey("https://h/a", "b/c") == GroupKey("https://h/a/b", "c") {
		t.Error("path and branch are not separated")
	}
}
