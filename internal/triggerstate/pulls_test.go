package triggerstate

import (
	"slices"
	"strings"
	"testing"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// TestDecidePull is the trust rule as a table: the repository's own pull requests are
// trusted like branches; a fork's runs only once its exact head is approved or its
// author is trusted, and never with credentials; an approval of an older head covers
// nothing.
func TestDecidePull(t *testing.T) {
	const head, older = "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"
	own := Pull{Number: 1, Head: head, Target: "main", Author: "alice"}
	fork := Pull{Number: 2, Head: head, Target: "main", Author: "mallory", Fork: true}
	tests := []struct {
		name          string
		pr            Pull
		approved      string
		trusted       []string
		build, trust  bool
		whyContaining string
	}{
		{"same repository", own, "", nil, true, true, ""},
		{"same repository, approval irrelevant", own, older, nil, true, true, ""},
		{"fork, no approval", fork, "", nil, false, false, "waiting for someone to approve head 1111111"},
		{"fork, approval for this head", fork, head, nil, true, false, "approved: built without Secrets"},
		{"fork, approval for an older head", fork, older, nil, false, false, "covers 2222222, not the new head 1111111"},
		{"fork, trusted author", fork, "", []string{"bob", "mallory"}, true, false, "trusted author mallory"},
		{"fork, another author trusted", fork, "", []string{"bob"}, false, false, "waiting"},
	}
	for _, tt := range tests {
		v := DecidePull(tt.pr, tt.approved, tt.trusted)
		if v.Build != tt.build || v.Trusted != tt.trust || !strings.Contains(v.Why, tt.whyContaining) {
			t.Errorf("%s: %+v, want build=%v trusted=%v why containing %q", tt.name, v, tt.build, tt.trust, tt.whyContaining)
		}
	}
}

// TestClosedPulls: a tracked pull request the forge no longer lists is closed (its runs
// are cancelled); one it lists whose head the advertisement lacks yet is kept.
func TestClosedPulls(t *testing.T) {
	missing := []v1alpha1.TriggerPullStatus{{Number: 9}, {Number: 3}, {Number: 5, Head: "h"}}
	kept, closed := ClosedPulls(missing, []int{5, 7})
	if len(kept) != 1 || kept[0].Number != 5 || kept[0].Head != "h" || !slices.Equal(closed, []int32{3, 9}) {
		t.Errorf("kept %v, closed %v", kept, closed)
	}
}

func TestTargetMatches(t *testing.T) {
	globs := []string{"main", "release/*"}
	for target, want := range map[string]bool{"main": true, "release/1.2": true, "release/1/x": false, "dev": false} {
		if got := TargetMatches(globs, target); got != want {
			t.Errorf("%s: %v, want %v", target, got, want)
		}
	}
}
