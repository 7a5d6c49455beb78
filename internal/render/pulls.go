package render

import (
	"strconv"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/shorten"
)

// PullRequestRunName is the name of the run a trigger starts for a pull request's head:
// <trigger>-pr<number>-<commit, 7>-<hash>, a function of the trigger (by UID), the
// number and the head alone, so a head is built once.
func PullRequestRunName(t *v1alpha1.PipelineTrigger, number int, head string) string {
	return triggeredName(t.Name, "pr"+strconv.Itoa(number), shorten.SHA(head),
		identity(string(t.UID), "pull", strconv.Itoa(number), head))
}

// PullRequestRun renders the run of a pull request's head: the trigger's run of its
// target branch at that commit (TriggeredRun), labelled with its number, event
// pull_request. An untrusted run (a fork's) gets no Secrets, whatever the template says,
// and a label that says so, which its reruns keep; a trusted one gets the Secrets
// listed for pull_request. Neither gets the ServiceAccount, nor saves caches.
func PullRequestRun(t *v1alpha1.PipelineTrigger, name string, number int, target, head string, trusted bool) *v1alpha1.PipelineRun {
	run := TriggeredRun(t, name, target, head, "")
	run.Labels[v1alpha1.LabelPullRequest] = strconv.Itoa(number)
	// A pull request's run builds its target branch: were it to save caches, unmerged
	// code would write the entries the target's own runs restore.
	delete(run.Labels, v1alpha1.LabelCacheWrite)
	// No pull request's run gets the template's ServiceAccount: it is not limited to
	// events as Secrets are, and a pull request is code no one has merged yet.
	run.Spec.ServiceAccountName = ""
	run.Spec.Secrets = nil
	if trusted {
		run.Spec.Secrets = ExposedSecrets(t.Spec.Template.Secrets, target, v1alpha1.EventPullRequest)
	} else {
		run.Labels[v1alpha1.LabelUntrusted] = "true"
	}
	return run
}
