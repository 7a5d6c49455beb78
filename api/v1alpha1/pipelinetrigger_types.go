package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Bounds and defaults of a PipelineTrigger. The markers repeat them as literals;
// TestTriggerCRDBounds fails when they drift.
const (
	// MaxTriggerBranches is how many branches one poll may track: more matching
	// branches fail the poll with TooManyBranches, so a glob cannot make one trigger
	// start hundreds of runs.
	MaxTriggerBranches = 50
	// DefaultTriggerInterval is spec.interval when unset.
	DefaultTriggerInterval = time.Minute
	// MinTriggerInterval is the shortest polling period.
	MinTriggerInterval = 10 * time.Second
	// DefaultStartingDeadline is a schedule's startingDeadline when unset.
	DefaultStartingDeadline = time.Hour
	// MaxTriggerRuns is how many of its newest runs a trigger records by UID
	// (status.runs): the commit status reporter posts for those only.
	MaxTriggerRuns = 200
)

// PipelineTriggerSpec says which branches and schedules of a repository start runs, what
// those runs look like, and where their results are reported.
// +kubebuilder:validation:XValidation:rule="(has(self.branches) && size(self.branches) > 0) || (has(self.schedules) && size(self.schedules) > 0) || has(self.pullRequests)",message="a trigger needs branches, schedules, pull requests, or some of them"
// +kubebuilder:validation:XValidation:rule="!has(self.pullRequests) || has(self.report)",message="pullRequests needs report: the forge's API says which pull requests are open, their targets and authors"
type PipelineTriggerSpec struct {
	// RepoURL is the repository to poll and build, with the same rules as a
	// PipelineRun's repoURL.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.matches('^(?i:https?|ssh)://[!-,.0-~][!-~]*$') || self.matches('^[A-Za-z0-9_][A-Za-z0-9._-]*@([A-Za-z0-9_][A-Za-z0-9._-]*|[[][0-9A-Fa-f:.]+[]]):[!-,.-~][!-~]*$')",message="repoURL must be an https://, http://, ssh:// or scp-like user@host:path URL in printable ASCII"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^(?i:https?)://[^/]*@')",message="repoURL must not carry a user or token; use gitSecretRef"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^(?i:ssh)://[^/]*:[^/]*@')",message="repoURL must not carry a password; use gitSecretRef"
	// +kubebuilder:validation:XValidation:rule="!self.contains('?') && !self.contains('#')",message="repoURL must not have a query or fragment"
	// +kubebuilder:validation:XValidation:rule="!self.matches('%([01][0-9A-Fa-f]|7[Ff])')",message="repoURL must not encode control characters"
	RepoURL string `json:"repoURL"`

	// GitSecretRef names a Secret in the trigger's namespace with git credentials, used
	// to poll and passed to every run. Whoever creates or changes the trigger must be
	// allowed to get it (config/policy).
	// +optional
	GitSecretRef *SecretReference `json:"gitSecretRef,omitempty"`

	// Branches are globs (path.Match: *, ?, [a-z]; * does not cross '/') of the
	// branches whose new heads start a run. At most 50 branches may match.
	// +optional
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=255
	// +kubebuilder:validation:items:Pattern=`^[A-Za-z0-9_*?\[][A-Za-z0-9._/+#%=,!&@*?\[\]-]*$`
	// +listType=set
	Branches []string `json:"branches,omitempty"`

	// Paths and IgnorePaths filter the new heads of branches by the files they change,
	// since the last commit the trigger built successfully on the branch: a head is built
	// when a changed file matches some Paths glob (any, when empty) and no IgnorePaths
	// glob. Globs are over slash-separated repository paths; * and ? stay within a
	// directory, ** spans any number of them (docs/path-filters.md). With no such commit
	// (a first build, a force push past it) everything counts as changed. Schedules are
	// not filtered.
	// +optional
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=255
	// +listType=atomic
	Paths []string `json:"paths,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=255
	// +listType=atomic
	IgnorePaths []string `json:"ignorePaths,omitempty"`

	// Interval is the polling period; each poll waits up to a tenth more, so that
	// triggers created together do not poll together.
	// +optional
	// +kubebuilder:default="1m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('10s') && duration(self) <= duration('24h')",message="interval must be between 10s and 24h"
	Interval *metav1.Duration `json:"interval,omitempty"`

	// OnNewBranch is what the first sight of a matching branch does, including every
	// branch at the trigger's first poll: Build its head, or Skip it and build from its
	// next change.
	// +optional
	// +kubebuilder:default=Build
	OnNewBranch NewBranchPolicy `json:"onNewBranch,omitempty"`

	// PullRequests builds the open pull requests into matching branches
	// (docs/pull-requests.md).
	// +optional
	PullRequests *PullRequestTrigger `json:"pullRequests,omitempty"`
	// CacheWrite lets the runs this trigger starts for its branches (pushes and
	// schedules, and their reruns) save their pipeline's caches once they succeed;
	// pull requests' runs and every other run only restore them (docs/caches.md).
	// +optional
	CacheWrite bool `json:"cacheWrite,omitempty"`

	// Schedules start runs of a branch at cron times.
	// +optional
	// +kubebuilder:validation:MaxItems=10
	// +listType=map
	// +listMapKey=name
	Schedules []TriggerSchedule `json:"schedules,omitempty"`

	// Template holds the fields of the runs the trigger creates. repoURL, branch,
	// revision and gitSecretRef come from the trigger and the commit.
	// +optional
	// +kubebuilder:default={}
	Template PipelineRunTemplate `json:"template,omitempty"`

	// Report posts each run's result to the forge as a commit status.
	// +optional
	Report *CommitStatusReport `json:"report,omitempty"`

	// Suspend stops polling and schedules; slots that pass while suspended are skipped.
	// Runs already started go on.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// SuccessfulHistoryLimit and FailedHistoryLimit keep this many finished runs of the
	// trigger per branch (and per schedule); older ones are deleted. Cancelled counts as
	// failed. Unset: the operator's --successful-history-limit and --failed-history-limit.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	SuccessfulHistoryLimit *int32 `json:"successfulHistoryLimit,omitempty"`
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	FailedHistoryLimit *int32 `json:"failedHistoryLimit,omitempty"`
}

// IntervalOrDefault is spec.interval, or DefaultTriggerInterval.
func (s *PipelineTriggerSpec) IntervalOrDefault() time.Duration {
	if s.Interval != nil && s.Interval.Duration >= MinTriggerInterval {
		return s.Interval.Duration
	}
	return DefaultTriggerInterval
}

// NewBranchPolicy is what a trigger does when it first sees a branch.
// +kubebuilder:validation:Enum=Build;Skip
type NewBranchPolicy string

// The new-branch policies.
const (
	NewBranchBuild NewBranchPolicy = "Build"
	NewBranchSkip  NewBranchPolicy = "Skip"
)

// TriggerSchedule starts a run of a branch's head at each slot of a cron schedule.
type TriggerSchedule struct {
	// Name identifies the schedule; it is part of its runs' names.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=20
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`
	// Cron is a five-field cron expression ("0 3 * * *") or a descriptor (@daily,
	// @every 2h30m). Slots are wall-clock minutes, so an @every schedule is whole
	// minutes, at least 1m apart.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('@every') || (self.matches('^@every ([0-9]+h)?([0-9]+m)?$') && self != '@every ' && duration(self.substring(7)) >= duration('1m'))",message="an @every schedule is a duration of whole minutes (such as 30m or 2h30m), at least 1m"
	Cron string `json:"cron"`
	// TimeZone is an IANA time zone ("Europe/Berlin"); UTC when empty. A slot in a
	// spring-forward gap runs an hour later, and a repeated hour runs once.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	TimeZone string `json:"timeZone,omitempty"`
	// Branch whose head the slot builds.
	// +optional
	// +kubebuilder:default=main
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9_][A-Za-z0-9._/+#%=,!&@-]*$') && !self.contains('..') && !self.contains('//') && !self.contains('/.') && !self.contains('@{') && !self.endsWith('/') && !self.endsWith('.') && !self.endsWith('.lock')",message="branch must be a git branch name"
	Branch string `json:"branch,omitempty"`
	// OnlyIfChanged skips a slot when the trigger already started a run for the
	// branch's head.
	// +optional
	OnlyIfChanged bool `json:"onlyIfChanged,omitempty"`
	// StartingDeadline is how late a slot may still start, after downtime or a slow
	// poll; an older slot is skipped. Only the newest missed slot ever runs.
	// +optional
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s') && duration(self) <= duration('168h')",message="startingDeadline must be between 0s and 168h"
	StartingDeadline *metav1.Duration `json:"startingDeadline,omitempty"`
}

// StartingDeadlineOrDefault is startingDeadline, or DefaultStartingDeadline.
func (s *TriggerSchedule) StartingDeadlineOrDefault() time.Duration {
	if s.StartingDeadline != nil {
		return s.StartingDeadline.Duration
	}
	return DefaultStartingDeadline
}

// PipelineRunTemplate holds the PipelineRun spec fields a trigger passes to its runs.
type PipelineRunTemplate struct {
	// +optional
	// +kubebuilder:default="build/flow-ci.yaml"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/') && !self.matches('(^|/)[.][.](/|$)') && !self.matches('[[:cntrl:]]')",message="pipelinePath must be a relative path inside the repository"
	PipelinePath string `json:"pipelinePath,omitempty"`
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s') && duration(self) <= duration('168h')",message="timeout must be positive and at most 168h"
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// +optional
	Workspace WorkspaceSpec `json:"workspace,omitempty"`
	// +optional
	ConcurrencyPolicy ConcurrencyPolicy `json:"concurrencyPolicy,omitempty"`
	// +optional
	// +kubebuilder:validation:Minimum=0
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`
	// ServiceAccountName of the runs' step pods. Whoever creates or changes the trigger
	// must be allowed to create pods in its namespace (config/policy).
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="serviceAccountName must be a DNS subdomain"
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// Secrets the runs may expose to their steps, each limited to branches and events.
	// Whoever creates or changes the trigger must be allowed to get each (config/policy).
	// +optional
	// +kubebuilder:validation:MaxItems=10
	// +listType=map
	// +listMapKey=name
	Secrets []TriggerSecret `json:"secrets,omitempty"`
}

// TriggerRunRef names a run a trigger created.
type TriggerRunRef struct {
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// +kubebuilder:validation:MaxLength=64
	UID string `json:"uid"`
}

// TriggerBranchStatus is what a trigger last saw of one branch.
type TriggerBranchStatus struct {
	// +kubebuilder:validation:MaxLength=255
	Name string `json:"name"`
	// Commit is the branch's head at the last poll that changed it.
	// +kubebuilder:validation:MaxLength=64
	Commit string `json:"commit"`
	// LastRun is the newest run the trigger started for the branch.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	LastRun string `json:"lastRun,omitempty"`
	// LastRunCommit is the commit LastRun builds.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	LastRunCommit string `json:"lastRunCommit,omitempty"`
	// LastRunPhase is LastRun's phase when the trigger last wrote it: Pending from its
	// creation until it ends (the trigger is not written per step or phase).
	// +optional
	LastRunPhase PipelineRunPhase `json:"lastRunPhase,omitempty"`
	// LastSucceededCommit is the commit of the branch's newest run that succeeded: the
	// base path filters compare a new head with.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	LastSucceededCommit string `json:"lastSucceededCommit,omitempty"`
}

// TriggerScheduleStatus is what a trigger last did for one schedule.
type TriggerScheduleStatus struct {
	// +kubebuilder:validation:MaxLength=20
	Name string `json:"name"`
	// LastScheduleTime is the newest slot that was run or skipped.
	// +optional
	LastScheduleTime *metav1.Time `json:"lastScheduleTime,omitempty"`
	// LastRun is the run the newest slot started, if any.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	LastRun string `json:"lastRun,omitempty"`
	// LastRunCommit is the commit LastRun builds.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	LastRunCommit string `json:"lastRunCommit,omitempty"`
	// +optional
	LastRunPhase PipelineRunPhase `json:"lastRunPhase,omitempty"`
	// NextScheduleTime is the next slot, as of the last write.
	// +optional
	NextScheduleTime *metav1.Time `json:"nextScheduleTime,omitempty"`
}

// PipelineTriggerStatus is written when a branch's head changes, a run is created or
// ends, a schedule's slot passes, or the Ready condition changes; a poll that finds
// nothing new writes nothing.
type PipelineTriggerStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// LastPollTime is the last poll whose outcome was written.
	// +optional
	LastPollTime *metav1.Time `json:"lastPollTime,omitempty"`
	// LastHandledRequestedAt echoes the ci.flowci.dev/requestedAt annotation once the
	// poll it asked for has run.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	LastHandledRequestedAt string `json:"lastHandledRequestedAt,omitempty"`
	// LastRun, LastCommit (short) and LastRunPhase are the newest run the trigger started.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	LastRun string `json:"lastRun,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxLength=12
	LastCommit string `json:"lastCommit,omitempty"`
	// +optional
	LastRunPhase PipelineRunPhase `json:"lastRunPhase,omitempty"`
	// Branches that match spec.branches, by name.
	// +optional
	// +kubebuilder:validation:MaxItems=50
	// +listType=map
	// +listMapKey=name
	Branches []TriggerBranchStatus `json:"branches,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxItems=10
	// +listType=map
	// +listMapKey=name
	Schedules []TriggerScheduleStatus `json:"schedules,omitempty"`
	// PullRequests are the open pull requests whose target matches, by number.
	// +optional
	// +kubebuilder:validation:MaxItems=250
	// +listType=map
	// +listMapKey=number
	PullRequests []TriggerPullStatus `json:"pullRequests,omitempty"`
	// LastHandledRerun echoes the ci.flowci.dev/rerun annotation once the request was
	// handled: its run created, or refused with an event that says why.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	LastHandledRerun string `json:"lastHandledRerun,omitempty"`
	// Runs are the newest runs the trigger created, newest first, by name and UID. The
	// commit status reporter posts only for these: a run that merely names the trigger
	// as its owner posts nothing.
	// +optional
	// +kubebuilder:validation:MaxItems=200
	// +listType=atomic
	Runs []TriggerRunRef `json:"runs,omitempty"`
	// Conditions: Ready is True while polls succeed, False with a reason when they fail
	// or the trigger is suspended or invalid.
	// +optional
	// +kubebuilder:validation:MaxItems=8
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// PipelineTrigger starts PipelineRuns: when a matching branch gets a new head, found by
// polling (no inbound webhook), and at cron times. Each commit is built once.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=pipelinetriggers,singular=pipelinetrigger,scope=Namespaced,shortName=fpt;fpts,categories=flowci;all
// +kubebuilder:printcolumn:name="Repo",type=string,JSONPath=`.spec.repoURL`
// +kubebuilder:printcolumn:name="Branches",type=string,JSONPath=`.spec.branches`
// +kubebuilder:printcolumn:name="Last commit",type=string,JSONPath=`.status.lastCommit`
// +kubebuilder:printcolumn:name="Last run",type=string,JSONPath=`.status.lastRun`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.lastRunPhase`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
type PipelineTrigger struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec   PipelineTriggerSpec   `json:"spec"`
	Status PipelineTriggerStatus `json:"status,omitempty"`
}

// PipelineTriggerList is a list of PipelineTriggers.
// +kubebuilder:object:root=true
type PipelineTriggerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PipelineTrigger `json:"items"`
}

func init() {
	SchemeBuilder.Register(&PipelineTrigger{}, &PipelineTriggerList{})
}
