package v1alpha1

// ConditionSucceeded is the run's outcome: Unknown while it is pending or running, True
// when every step succeeded, False when it failed or was cancelled. `kubectl wait
// --for=condition=Succeeded` waits on it.
const ConditionSucceeded = "Succeeded"

// ConditionReconciling is True while the last reconcile hit a transient error that will
// be retried; its message holds that error. It is removed once a reconcile succeeds.
const ConditionReconciling = "Reconciling"

// Reasons of the Succeeded condition. Events reuse them.
const (
	// ReasonPending: the run was accepted and is resolving its commit and pipeline.
	ReasonPending = "Pending"
	// ReasonRunning: a clone or step Job is active.
	ReasonRunning = "Running"
	// ReasonSucceeded: every step completed.
	ReasonSucceeded = "Succeeded"
	// ReasonStepFailed: a step's Job failed; the message names the step and exit code.
	ReasonStepFailed = "StepFailed"
	// ReasonStepTimedOut: a step ran longer than its timeout.
	ReasonStepTimedOut = "StepTimedOut"
	// ReasonStepJobDeleted: a step's Job was deleted before it finished. It is never
	// recreated silently.
	ReasonStepJobDeleted = "StepJobDeleted"
	// ReasonTimedOut: the run ran longer than spec.timeout.
	ReasonTimedOut = "TimedOut"
	// ReasonUnschedulable: a pod stayed pending or unschedulable past the watchdog.
	ReasonUnschedulable = "Unschedulable"
	// ReasonNodeLost: the node of the run's workspace stopped answering (its Ready
	// condition not True, or the Node deleted) past the watchdog; a ReadWriteOnce
	// workspace went with it, so the whole run fails.
	ReasonNodeLost = "NodeLost"
	// ReasonImagePullFailed: a pod's image could not be pulled within the watchdog.
	ReasonImagePullFailed = "ImagePullFailed"
	// ReasonCreateContainerFailed: a container could not be created (for example a
	// missing ConfigMap or Secret) within the watchdog.
	ReasonCreateContainerFailed = "CreateContainerFailed"
	// ReasonServiceNotReady: a step's service (a sidecar) exited or failed its
	// readiness check before the step's container could start.
	ReasonServiceNotReady = "ServiceNotReady"
	// ReasonReused: a step of a run that resumes another is not run again: it
	// succeeded in that run, whose workspace holds what it left (a Skipped step's).
	ReasonReused = "Reused"
	// ReasonResumeRefused: the run cannot resume the run it names (gone, still active,
	// succeeded, of another commit or pipeline file, or its workspace is gone or taken).
	ReasonResumeRefused = "ResumeRefused"
	// ReasonCancelled: spec.cancel was set, or a newer run replaced this one.
	ReasonCancelled = "Cancelled"
	// ReasonConcurrencyForbidden: concurrencyPolicy Forbid and another run of the same
	// repository and branch was active.
	ReasonConcurrencyForbidden = "ConcurrencyForbidden"
	// ReasonQueued: the run waits for older runs (concurrencyPolicy Queue, or the
	// operator's --max-active-runs).
	ReasonQueued = "Queued"
	// ReasonCloneFailed: the clone Job could not check out the commit.
	ReasonCloneFailed = "CloneFailed"
	// ReasonInvalidSpec: the spec passed the schema but the controller refused it,
	// for example a repo URL whose host resolves to a metadata address.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonInvalidDefinition: the pipeline file does not parse or validate.
	ReasonInvalidDefinition = "InvalidDefinition"
	// ReasonDefinitionNotFound: the pipeline file is missing at the commit.
	ReasonDefinitionNotFound = "DefinitionNotFound"
	// ReasonBranchNotFound: the branch does not exist, or the repository is empty.
	ReasonBranchNotFound = "BranchNotFound"
	// ReasonRevisionNotFound: the pinned revision cannot be fetched.
	ReasonRevisionNotFound = "RevisionNotFound"
	// ReasonRepositoryNotFound: the repository does not exist or is not visible.
	ReasonRepositoryNotFound = "RepositoryNotFound"
	// ReasonAuthenticationFailed: the server refused the credentials, or the git
	// Secret is malformed or may not be used for the repository.
	ReasonAuthenticationFailed = "AuthenticationFailed"
	// ReasonChildConflict: an object with a child's name exists and is not owned by
	// this run, or is owned by it but is not the object the run would create. It is
	// left untouched.
	ReasonChildConflict = "ChildConflict"
	// ReasonChildRejected: the API server refused a child the run rendered (too
	// large, or invalid); retrying cannot help.
	ReasonChildRejected = "ChildRejected"
	// ReasonAddressNotAllowed: the repository's host is, resolves to, or redirects to
	// an address the operator's egress policy denies (--git-allowed-networks).
	ReasonAddressNotAllowed = "AddressNotAllowed"
	// ReasonSourceTooLarge: the git server sent more than the operator's read budget
	// allows.
	ReasonSourceTooLarge = "SourceTooLarge"
	// ReasonSecretNotFound: the git Secret did not appear within the operator's
	// --pending-timeout.
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonSourceUnavailable: the git server could not be reached, or kept failing,
	// within the operator's --pending-timeout.
	ReasonSourceUnavailable = "SourceUnavailable"
	// ReasonSecretNotExposed: a step asks for a Secret its run does not expose
	// (spec.secrets); it fails without running.
	ReasonSecretNotExposed = "SecretNotExposed"
	// ReasonWhenFalse: a step's when did not hold; it counts as done for its dependents.
	ReasonWhenFalse = "WhenFalse"
	// ReasonUpstreamFailed: a step was skipped because a step it depends on failed.
	ReasonUpstreamFailed = "UpstreamFailed"
	// ReasonAllowedFailure: a step with allowFailure failed; its dependents run and the
	// run can still succeed.
	ReasonAllowedFailure = "AllowedFailure"
	// ReasonFailFast: a step was stopped, or never started, because another failed and
	// the pipeline has failFast.
	ReasonFailFast = "FailFast"
	// ReasonTransientError: the last reconcile failed and will be retried (on the
	// Reconciling condition).
	ReasonTransientError = "TransientError"
)

// Event reasons. A succeeded run's event is Succeeded; a failed run's is Failed, with
// the Succeeded condition's specific reason (StepFailed, InvalidDefinition, ...) first in
// its note.
const (
	// EventStarted: the run's commit and pipeline are pinned and its clone Job was created.
	EventStarted = "Started"
	// EventStepStarted: a step's Job was created.
	EventStepStarted = "StepStarted"
	// EventStepSucceeded: a step's Job completed.
	EventStepSucceeded = "StepSucceeded"
	// EventStepFailed: a step's Job failed.
	EventStepFailed = "StepFailed"
	// EventFailed: the run failed.
	EventFailed = "Failed"
)

// ConditionReady is a PipelineTrigger's health: True while it polls successfully.
const ConditionReady = "Ready"

// Reasons of a PipelineTrigger's Ready condition.
const (
	// ReasonPolling: the last poll succeeded; the trigger polls at its interval.
	ReasonPolling = "Polling"
	// ReasonSuspended: spec.suspend is set; nothing is polled or scheduled.
	ReasonSuspended = "Suspended"
	// ReasonInvalidSchedule: a schedule's cron or time zone does not parse.
	ReasonInvalidSchedule = "InvalidSchedule"
	// ReasonTooManyBranches: more branches match spec.branches than a trigger tracks.
	ReasonTooManyBranches = "TooManyBranches"
	// ReasonPollFailed: the last poll failed with a transient error and is retried;
	// the message says why.
	ReasonPollFailed = "PollFailed"
	// ReasonRunConflict: a run with the name the trigger would give exists and is not
	// the trigger's; it is left alone and that head is not built.
	ReasonRunConflict = "RunConflict"
	// ReasonRunBudgetExhausted: the triggers of the namespace started as many runs in
	// the last hour as the operator's --trigger-runs-per-hour allows; heads are built
	// once the budget frees, and schedule slots meanwhile are skipped.
	ReasonRunBudgetExhausted = "RunBudgetExhausted"
)

// Event reasons of PipelineTriggers and commit status reports.
const (
	// EventTriggered: a trigger created a run (for a new head, or a schedule's slot).
	EventTriggered = "Triggered"
	// EventRerunRefused: a trigger did not act on a rerun request (an unknown run, or
	// one that is not the trigger's); the note says why.
	EventRerunRefused = "RerunRefused"
	// EventPullsUnavailable: the forge's API did not list the open pull requests; they
	// are kept as they were until a poll can.
	EventPullsUnavailable = "PullRequestsUnavailable"
	// EventPullClosed: a pull request is no longer open; its active runs are cancelled.
	EventPullClosed = "PullRequestClosed"
	// EventHeadSkipped: a new head of a branch was not built: the trigger's path
	// filters match none of the files it changed.
	EventHeadSkipped = "HeadSkipped"
	// EventSlotSkipped: a schedule's slot passed without a run: its poll failed, or the
	// namespace's run budget was spent.
	EventSlotSkipped = "SlotSkipped"
	// EventCommitStatusFailed: the forge refused a commit status for good (a bad
	// token, an unknown repository or commit); the run itself is unaffected.
	EventCommitStatusFailed = "CommitStatusFailed"
)
