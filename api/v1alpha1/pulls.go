package v1alpha1

// MaxTriggerPulls bounds the open pull requests a trigger tracks (status.pullRequests):
// the forge's list is read up to this many.
const MaxTriggerPulls = 250

// EventPullRequest is the event of a trigger's run of a pull request's head.
const EventPullRequest Event = "pull_request"

// LabelPullRequest on a trigger's run of a pull request is its number. Only the
// operator may set it (config/policy), like the other trigger labels.
const LabelPullRequest = "flowci.dev/trigger-pull-request"

// LabelUntrusted on a trigger's run of a fork's pull request says it is built without
// Secrets; its reruns are too. Operator-only, like the other trigger labels.
const LabelUntrusted = "flowci.dev/trigger-untrusted"

// AnnotationApprovePrefix starts the annotations on a PipelineTrigger that approve a
// fork's pull request: approve.ci.flowci.dev/<number> is the one head commit approved
// (flowci approve). Adding or changing one needs the custom verb `approve` on
// pipelinetriggers (config/policy), so the API server's audit log records who approved
// what.
const AnnotationApprovePrefix = "approve.ci.flowci.dev/"

// PullRequestTrigger builds the open pull requests (GitHub, Gitea) or merge requests
// (GitLab) of the trigger's repository into matching branches, polled like branches:
// their heads from the ref advertisement, their target, author and origin from the
// forge's API (spec.report's provider, URL and token).
type PullRequestTrigger struct {
	// Targets are globs (path.Match) of the branches whose pull requests are built.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=255
	// +listType=set
	Targets []string `json:"targets"`
	// TrustedAuthors are logins whose pull requests from forks need no approval. Their
	// runs are still a fork's: no Secrets, no ServiceAccount.
	// +optional
	// +kubebuilder:validation:MaxItems=50
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=255
	// +listType=set
	TrustedAuthors []string `json:"trustedAuthors,omitempty"`
}

// TriggerPullStatus is what a trigger last saw and did for one open pull request.
type TriggerPullStatus struct {
	Number int32 `json:"number"`
	// Head is the pull request's head commit at the last poll.
	// +kubebuilder:validation:MaxLength=64
	Head string `json:"head"`
	// +kubebuilder:validation:MaxLength=255
	Target string `json:"target"`
	// +optional
	// +kubebuilder:validation:MaxLength=255
	Author string `json:"author,omitempty"`
	// Fork says the head lives in another repository: its runs need an approval of
	// their head and never get Secrets or a ServiceAccount.
	// +optional
	Fork bool `json:"fork,omitempty"`
	// SkippedHead is the head the trigger's path filters kept from being built.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	SkippedHead string `json:"skippedHead,omitempty"`
	// Waiting says why the head has no run (an approval, a path filter), "" once it
	// has one.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Waiting string `json:"waiting,omitempty"`
	// LastRun is the newest run the trigger started for the pull request, and
	// LastRunCommit the head it builds.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	LastRun string `json:"lastRun,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxLength=64
	LastRunCommit string `json:"lastRunCommit,omitempty"`
}
