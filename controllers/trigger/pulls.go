package trigger

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers/sources"
	"github.com/flow-ci/flow-ci/internal/changes"
	"github.com/flow-ci/flow-ci/internal/gitsource"
	"github.com/flow-ci/flow-ci/internal/render"
	"github.com/flow-ci/flow-ci/internal/shorten"
	"github.com/flow-ci/flow-ci/internal/triggerstate"
)

// pullsToken reads the forge token of a trigger that builds pull requests (its
// report's), or "" for one that does not.
func (r *Reconciler) pullsToken(ctx context.Context, trig *v1alpha1.PipelineTrigger) (string, error) {
	if trig.Spec.PullRequests == nil || trig.Spec.Report == nil {
		return "", nil
	}
	return sources.Secrets{Reader: r.APIReader}.Token(ctx, trig.Namespace, trig.Spec.Report.SecretRef.Name, trig.Spec.RepoURL)
}

// list is a poll's I/O, on the pool: the branches, and for a trigger of pull requests
// their heads from the same ref advertisement and their targets, authors and origins
// from the forge's API. A pull request the API lists but the advertisement does not
// (not yet replicated) waits for the next poll; one failing API answer keeps the
// pull requests as they were, and the branches are still built.
func (r *Reconciler) list(ctx context.Context, spec *v1alpha1.PipelineTriggerSpec, auth *gitsource.Auth, token string, tokenErr error) (found, error) {
	refs, err := r.Git.ListRefs(ctx, spec.RepoURL, auth)
	if err != nil {
		return found{}, err
	}
	f := found{heads: refs.Branches, pullsErr: tokenErr}
	if spec.PullRequests == nil || tokenErr != nil {
		return f, nil
	}
	prs, err := r.Git.ListPulls(ctx, spec.Report, spec.RepoURL, token)
	if err != nil {
		f.pullsErr = err
		return f, nil
	}
	for _, pr := range prs {
		if !triggerstate.TargetMatches(spec.PullRequests.Targets, pr.Target) || gitsource.ValidateBranch(pr.Target) != nil || len(pr.Author) > 255 {
			continue
		}
		head, ok := refs.Pulls[pr.Number]
		if !ok {
			f.unseen = append(f.unseen, pr.Number) // open, but not yet in the advertisement
			continue
		}
		// Trusted only when its head is a branch of the repository at that very commit:
		// someone with write access pushed it. A pull request whose head is not (a fork,
		// or Gitea's AGit flow, refs/for/<target>, open to anyone who may read) is a
		// fork's.
		fork := pr.Fork || pr.HeadBranch == "" || refs.Branches[pr.HeadBranch] != head
		f.pulls = append(f.pulls, triggerstate.Pull{Number: pr.Number, Head: head, Target: pr.Target, Author: pr.Author, Fork: fork})
	}
	slices.SortFunc(f.pulls, func(a, b triggerstate.Pull) int { return a.Number - b.Number })
	if len(f.pulls) > v1alpha1.MaxTriggerPulls {
		f.pulls, f.pullsErr = nil, fmt.Errorf("more than %d open pull requests match spec.pullRequests.targets", v1alpha1.MaxTriggerPulls)
	}
	return f, nil
}

// approvals are the heads approved per pull request (approve.ci.flowci.dev/<number>).
// Only the canonical spelling of a number counts: "012" or "+12" approve nothing.
func approvals(trig *v1alpha1.PipelineTrigger) map[int]string {
	out := map[int]string{}
	for k, v := range trig.Annotations {
		num, ok := strings.CutPrefix(k, v1alpha1.AnnotationApprovePrefix)
		if n, err := strconv.Atoi(num); ok && err == nil && n > 0 && strconv.Itoa(n) == num {
			out[n] = v
		}
	}
	return out
}

// handlePulls acts on a poll's pull requests: each head the trust rule lets build gets
// one run (trusted or not), the others wait with why in status; a pull request that is
// no longer open (closed or merged) has its active runs cancelled.
func (r *Reconciler) handlePulls(ctx context.Context, p *pass, done *poll, o *outcome) error {
	trig, st := p.trig, &p.trig.Status
	if trig.Spec.PullRequests == nil {
		st.PullRequests = nil
		return nil
	}
	if done.pullsErr != nil {
		p.event(corev1.EventTypeWarning, v1alpha1.EventPullsUnavailable, "listing pull requests: %v", done.pullsErr)
		return nil
	}
	prev := map[int32]v1alpha1.TriggerPullStatus{}
	for _, ps := range st.PullRequests {
		prev[ps.Number] = ps
	}
	approved := approvals(trig)
	next := make([]v1alpha1.TriggerPullStatus, 0, len(done.pulls))
	for _, pr := range done.pulls {
		ps := prev[int32(pr.Number)]
		delete(prev, int32(pr.Number))
		ps.Number, ps.Head, ps.Target, ps.Author, ps.Fork = int32(pr.Number), pr.Head, pr.Target, pr.Author, pr.Fork
		v := triggerstate.DecidePull(pr, approved[pr.Number], trig.Spec.PullRequests.TrustedAuthors)
		ps.Waiting = ""
		if why, skip := done.skips[pullSkipKey(pr.Number, pr.Head)]; skip && done.generation == trig.Generation {
			ps.SkippedHead = pr.Head
			p.event(corev1.EventTypeNormal, v1alpha1.EventHeadSkipped, "pull request %d at %s not built: %s", pr.Number, shorten.SHA(pr.Head), why)
		}
		switch {
		case ps.SkippedHead == pr.Head:
			ps.Waiting = "not built: the trigger's path filters match none of its changes"
		case !v.Build:
			ps.Waiting = shorten.Head(v.Why, 1024)
		case ps.LastRunCommit != pr.Head:
			name := render.PullRequestRunName(trig, pr.Number, pr.Head)
			created, err := r.createRun(ctx, p, render.PullRequestRun(trig, name, pr.Number, pr.Target, pr.Head, v.Trusted))
			if err != nil {
				return err
			}
			if o.note(created, name) {
				ps.LastRun, ps.LastRunCommit = name, pr.Head
			}
		}
		next = append(next, ps)
	}
	kept, closed := triggerstate.ClosedPulls(slices.Collect(maps.Values(prev)), done.unseen)
	for _, n := range closed {
		if err := r.cancelPull(ctx, p, n); err != nil {
			return err
		}
	}
	next = append(next, kept...)
	slices.SortFunc(next, func(a, b v1alpha1.TriggerPullStatus) int { return int(a.Number - b.Number) })
	st.PullRequests = next
	return nil
}

// cancelPull cancels the active runs of a pull request that is no longer open.
func (r *Reconciler) cancelPull(ctx context.Context, p *pass, number int32) error {
	list := &v1alpha1.PipelineRunList{}
	if err := r.Client.List(ctx, list, client.InNamespace(p.trig.Namespace), client.MatchingLabels{
		v1alpha1.LabelTriggerUID: string(p.trig.UID), v1alpha1.LabelPullRequest: strconv.Itoa(int(number))}); err != nil {
		return fmt.Errorf("listing the runs of pull request %d: %w", number, err)
	}
	for i := range list.Items {
		run := list.Items[i].DeepCopy()
		if ref := metav1.GetControllerOf(run); ref == nil || ref.UID != p.trig.UID || run.Status.Phase.IsFinished() || run.Spec.Cancel {
			continue // labelled like ours but not ours, or done
		}
		patch := client.MergeFrom(run.DeepCopy())
		run.Spec.Cancel = true
		if err := r.Client.Patch(ctx, run, patch); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("cancelling run %s of closed pull request %d: %w", run.Name, number, err)
		}
		p.event(corev1.EventTypeNormal, v1alpha1.EventPullClosed, "pull request %d is closed: cancelled run %s", number, run.Name)
	}
	return nil
}

// filterPulls applies the trigger's path filters to the pull request heads it has not
// decided yet, compared with their merge base with the target, within the poll's time
// and the same count as branch heads; a head it cannot compare is built. It records
// the heads not to build in f.skips, by pullSkipKey.
func (r *Reconciler) filterPulls(ctx context.Context, spec *v1alpha1.PipelineTriggerSpec, prev []v1alpha1.TriggerPullStatus,
	approved map[int]string, f *found, auth *gitsource.Auth) {
	if spec.PullRequests == nil || (changes.Filter{Paths: spec.Paths, IgnorePaths: spec.IgnorePaths}).Validate() != nil {
		return
	}
	decided := map[string]bool{}
	for _, ps := range prev {
		decided[pullSkipKey(int(ps.Number), ps.LastRunCommit)] = true
		decided[pullSkipKey(int(ps.Number), ps.SkippedHead)] = true
	}
	filter := changes.Filter{Paths: spec.Paths, IgnorePaths: spec.IgnorePaths}
	compared := 0
	for _, pr := range f.pulls {
		key := pullSkipKey(pr.Number, pr.Head)
		if decided[key] || !triggerstate.DecidePull(pr, approved[pr.Number], spec.PullRequests.TrustedAuthors).Build {
			continue // decided, or waiting for an approval: no work for a head nobody let in
		}
		if compared++; compared > maxFilteredHeads || ctx.Err() != nil {
			return
		}
		files, all, err := r.Git.ChangedFilesFromMergeBase(ctx, spec.RepoURL, pr.Target, pr.Head, auth)
		if err != nil {
			continue
		}
		if build, why := filter.Decide(files, all); !build {
			if f.skips == nil {
				f.skips = map[string]string{}
			}
			f.skips[key] = why + " since the merge base with " + pr.Target
		}
	}
}

// pullSkipKey names a pull request's head in found.skips.
func pullSkipKey(number int, head string) string {
	return "pull\x00" + strconv.Itoa(number) + "\x00" + head
}
