package render

import (
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestGroupLabels(t *testing.T) {
	same := []string{
		"https://github.com/Org/Repo.git",
		"https://GitHub.com/Org/Repo",
		"https://github.com/Org/Repo/",
		"ssh://git@github.com/Org/Repo.git",
		"git@github.com:Org/Repo.git",
		"https://github.com:443/Org/Repo",
	}
	want := GroupLabels(same[0], "main")
	for _, u := range same[1:] {
		if got := GroupLabels(u, "main"); got[LabelRepo] != want[LabelRepo] {
			t.Errorf("%s: repo label %s, want %s (normalised %q vs %q)", u, got[LabelRepo], want[LabelRepo], NormalizeRepoURL(u), NormalizeRepoURL(same[0]))
		}
	}
	different := []string{"https://github.com/Org/Other.git", "https://gitlab.com/Org/Repo.git", "https://github.com/org/repo.git", "http://10.88.0.1:8418/Org/Repo.git"}
	for _, u := range different {
		if got := GroupLabels(u, "main"); got[LabelRepo] == want[LabelRepo] {
			t.Errorf("%s shares the repo label of %s", u, same[0])
		}
	}
	if GroupLabels(same[0], "dev")[LabelBranch] == want[LabelBranch] {
		t.Error("branches share a label")
	}
	long := "feature/a-very-long-branch-name-that-does-not-fit-into-a-label-value-at-all"
	for _, b := range []string{"main", "feature/x", long, "v1.0+build", "@weird"} {
		if errs := validation.IsValidLabelValue(GroupLabels(same[0], b)[LabelBranch]); len(errs) > 0 {
			t.Errorf("branch %q: %v", b, errs)
		}
	}
}
