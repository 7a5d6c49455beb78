package triggerstate

import (
	"fmt"
	"path"
	"slices"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/shorten"
)

// Pull is what a trigger knows of an open pull request: its head from the ref
// advertisement, the rest from the forge's API.
type Pull struct {
	Number int
	Head   string
	Target string
	Author string
	Fork   bool
}

// PullVerdict is what a trigger does with a pull request's head.
type PullVerdict struct {
	// Build says a run may start for the head now.
	Build bool
	// Trusted says the run is built like a branch's: with the Secrets, ServiceAccount
	// and cache writes its template gives. Only a pull request from the repository
	// itself is; a fork's run never is, approved or not, since its head is code no one
	// with write access to the repository wrote (a "pwn request" would otherwise read
	// the deploy token).
	Trusted bool
	// Why says, for a head not built or built untrusted, why.
	Why string
}

// DecidePull applies the trust rule to an open pull request whose target matches the
// trigger. approvedHead is the head someone approved for it (flowci approve), "" for
// none; an approval covers exactly one head, so a push after it needs a new one.
func DecidePull(pr Pull, approvedHead string, trustedAuthors []string) PullVerdict {
	switch {
	case !pr.Fork:
		return PullVerdict{Build: true, Trusted: true}
	case slices.Contains(trustedAuthors, pr.Author):
		return PullVerdict{Build: true, Why: fmt.Sprintf("from a fork by trusted author %s: built without Secrets or ServiceAccount", pr.Author)}
	case approvedHead != "" && approvedHead == pr.Head:
		return PullVerdict{Build: true, Why: fmt.Sprintf("from a fork, head %s approved: built without Secrets or ServiceAccount", shorten.SHA(pr.Head))}
	case approvedHead != "":
		return PullVerdict{Why: fmt.Sprintf("from a fork: the approval covers %s, not the new head %s; approve again", shorten.SHA(approvedHead), shorten.SHA(pr.Head))}
	}
	return PullVerdict{Why: fmt.Sprintf("from a fork: waiting for someone to approve head %s", shorten.SHA(pr.Head))}
}

// TargetMatches says whether a pull request into target is one the trigger builds.
func TargetMatches(globs []string, target string) bool {
	for _, g := range globs {
		if ok, err := path.Match(g, target); err == nil && ok {
			return true
		}
	}
	return false
}

// ClosedPulls splits the pull requests a trigger tracked that a poll did not list with a
// head: those still open whose head the ref advertisement lacks yet (unseen), kept as
// they were, and the closed or merged ones, whose active runs are cancelled.
func ClosedPulls(missing []v1alpha1.TriggerPullStatus, unseen []int) (kept []v1alpha1.TriggerPullStatus, closed []int32) {
	for _, ps := range missing {
		if slices.Contains(unseen, int(ps.Number)) {
			kept = append(kept, ps)
		} else {
			closed = append(closed, ps.Number)
		}
	}
	slices.Sort(closed)
	return kept, closed
}
