package v1alpha1

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Bounds that keep status within etcd's limits. The schema markers below repeat them as
// literals (markers cannot name constants); TestCRDBoundsMatchAPI fails when they drift.
const (
	// MaxSteps is the largest number of steps a pipeline may have: the parser refuses
	// more, and status.steps has this maxItems.
	MaxSteps = 100
	// MaxMessageBytes bounds every message the controller writes to status.
	MaxMessageBytes = 4096
)

// Defaults of the spec. The CRD applies them on admission; Go code reads them through
// the accessors below for objects that were never defaulted (unit tests). The markers
// repeat them, and TestCRDDefaults fails when they drift.
const (
	DefaultTimeout       = time.Hour
	DefaultWorkspaceSize = "1Gi"
)

// TimeoutOrDefault is spec.timeout, or DefaultTimeout when it is unset.
func (s *PipelineRunSpec) TimeoutOrDefault() time.Duration {
	if s.Timeout != nil {
		return s.Timeout.Duration
	}
	return DefaultTimeout
}

// SizeOrDefault is spec.workspace.size, or DefaultWorkspaceSize when it is unset.
func (w *WorkspaceSpec) SizeOrDefault() resource.Quantity {
	if w.Size != nil {
		return w.Size.DeepCopy()
	}
	return resource.MustParse(DefaultWorkspaceSize)
}

// PipelineRunSpec says what to build: a repository, a branch or a pinned commit, and the
// pipeline file inside it. The spec is immutable after creation, except cancel (one way)
// and ttlSecondsAfterFinished, so a run always describes exactly one build, with the
// credentials and identity it was admitted with.
// +kubebuilder:validation:XValidation:rule="self.repoURL == oldSelf.repoURL",message="repoURL is immutable"
// +kubebuilder:validation:XValidation:rule="self.branch == oldSelf.branch",message="branch is immutable"
// +kubebuilder:validation:XValidation:rule="has(self.revision) == has(oldSelf.revision) && (!has(self.revision) || self.revision == oldSelf.revision)",message="revision is immutable"
// +kubebuilder:validation:XValidation:rule="self.pipelinePath == oldSelf.pipelinePath",message="pipelinePath is immutable"
// +kubebuilder:validation:XValidation:rule="has(self.resumeFrom) == has(oldSelf.resumeFrom) && (!has(self.resumeFrom) || self.resumeFrom == oldSelf.resumeFrom)",message="resumeFrom is immutable"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.cancel) || !oldSelf.cancel || (has(self.cancel) && self.cancel)",message="cancel cannot be undone"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.abort) || !oldSelf.abort || (has(self.abort) && self.abort)",message="abort cannot be undone"
// +kubebuilder:validation:XValidation:rule="has(self.gitSecretRef) == has(oldSelf.gitSecretRef) && (!has(self.gitSecretRef) || self.gitSecretRef == oldSelf.gitSecretRef)",message="gitSecretRef is immutable"
// +kubebuilder:validation:XValidation:rule="has(self.secrets) == has(oldSelf.secrets) && (!has(self.secrets) || self.secrets == oldSelf.secrets)",message="secrets is immutable"
// +kubebuilder:validation:XValidation:rule="has(self.serviceAccountName) == has(oldSelf.serviceAccountName) && (!has(self.serviceAccountName) || self.serviceAccountName == oldSelf.serviceAccountName)",message="serviceAccountName is immutable"
// +kubebuilder:validation:XValidation:rule="has(self.timeout) == has(oldSelf.timeout) && (!has(self.timeout) || duration(self.timeout) == duration(oldSelf.timeout))",message="timeout is immutable"
// +kubebuilder:validation:XValidation:rule="has(self.concurrencyPolicy) == has(oldSelf.concurrencyPolicy) && (!has(self.concurrencyPolicy) || self.concurrencyPolicy == oldSelf.concurrencyPolicy)",message="concurrencyPolicy is immutable"
// +kubebuilder:validation:XValidation:rule="has(self.workspace.storageClassName) == has(oldSelf.workspace.storageClassName) && (!has(self.workspace.storageClassName) || self.workspace.storageClassName == oldSelf.workspace.storageClassName)",message="workspace.storageClassName is immutable"
// +kubebuilder:validation:XValidation:rule="has(self.workspace.accessModes) == has(oldSelf.workspace.accessModes) && (!has(self.workspace.accessModes) || self.workspace.accessModes == oldSelf.workspace.accessModes)",message="workspace.accessModes is immutable"
// +kubebuilder:validation:XValidation:rule="has(self.workspace.size) == has(oldSelf.workspace.size) && (!has(self.workspace.size) || string(self.workspace.size) == string(oldSelf.workspace.size))",message="workspace.size is immutable"
type PipelineRunSpec struct {
	// RepoURL is the git repository to build: https://, http://, ssh:// or scp-like
	// user@host:path, in printable ASCII. Credentials never go in the URL (no user or
	// token on http(s), no password on ssh, no query); use gitSecretRef.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.matches('^(?i:https?|ssh)://[!-,.0-~][!-~]*$') || self.matches('^[A-Za-z0-9_][A-Za-z0-9._-]*@([A-Za-z0-9_][A-Za-z0-9._-]*|[[][0-9A-Fa-f:.]+[]]):[!-,.-~][!-~]*$')",message="repoURL must be an https://, http://, ssh:// or scp-like user@host:path URL in printable ASCII"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^(?i:https?)://[^/]*@')",message="repoURL must not carry a user or token; use gitSecretRef"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^(?i:ssh)://[^/]*:[^/]*@')",message="repoURL must not carry a password; use gitSecretRef"
	// +kubebuilder:validation:XValidation:rule="!self.contains('?') && !self.contains('#')",message="repoURL must not have a query or fragment"
	// +kubebuilder:validation:XValidation:rule="!self.matches('%([01][0-9A-Fa-f]|7[Ff])')",message="repoURL must not encode control characters"
	RepoURL string `json:"repoURL"`

	// Branch is the branch whose head is built, resolved once when the run starts.
	// +optional
	// +kubebuilder:default=main
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9_][A-Za-z0-9._/+#%=,!&@-]*$')",message="branch must be a git branch name: it starts with a letter, digit or underscore and has no spaces, control characters or git-special characters"
	// +kubebuilder:validation:XValidation:rule="!self.contains('..') && !self.contains('//') && !self.contains('/.') && !self.contains('@{')",message="branch must not contain '..', '//', '/.' or '@{'"
	// +kubebuilder:validation:XValidation:rule="!self.endsWith('/') && !self.endsWith('.') && !self.endsWith('.lock')",message="branch must not end with '/', '.' or '.lock'"
	Branch string `json:"branch,omitempty"`

	// Revision pins the run to a full commit SHA (40 or 64 lowercase hex characters).
	// When set, the branch head is not resolved.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9a-f]{40}|[0-9a-f]{64})$')",message="revision must be a full commit SHA: 40 or 64 lowercase hex characters"
	// +kubebuilder:validation:MaxLength=64
	Revision string `json:"revision,omitempty"`

	// PipelinePath is the pipeline file, relative to the repository root.
	// +optional
	// +kubebuilder:default="build/flow-ci.yaml"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/') && !self.matches('(^|/)[.][.](/|$)') && !self.matches('[[:cntrl:]]')",message="pipelinePath must be a relative path inside the repository"
	PipelinePath string `json:"pipelinePath,omitempty"`

	// GitSecretRef names a Secret in the run's namespace with git credentials, in Flux's
	// key format: username/password or bearerToken for HTTPS, with ca.crt for a private
	// CA; identity and known_hosts (required) for SSH.
	// +optional
	GitSecretRef *SecretReference `json:"gitSecretRef,omitempty"`

	// Timeout bounds the whole run, counted from its start.
	// +optional
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s') && duration(self) <= duration('168h')",message="timeout must be positive and at most 168h"
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// Workspace is the per-run volume shared by the clone and every step.
	// +optional
	// +kubebuilder:default={}
	Workspace WorkspaceSpec `json:"workspace,omitempty"`

	// Cancel stops the run: the running steps are stopped gracefully, their log tails
	// kept, its finally steps run, and the run ends Cancelled. It cannot be set back to
	// false.
	// +optional
	Cancel bool `json:"cancel,omitempty"`

	// Abort is the second cancel: it stops everything at once, finally steps included.
	// It cannot be set back to false.
	// +optional
	Abort bool `json:"abort,omitempty"`

	// ConcurrencyPolicy decides what happens when another run of the same repository and
	// branch (in this namespace) is active: Allow runs both; Forbid fails this run; Replace
	// cancels the older ones; Queue waits until they end, in creation order.
	// +optional
	// +kubebuilder:default=Allow
	ConcurrencyPolicy ConcurrencyPolicy `json:"concurrencyPolicy,omitempty"`

	// TTLSecondsAfterFinished deletes the run, and everything it owns, this long after it
	// finished. The operator's --ttl-seconds-after-finished gives the default.
	// +optional
	// +kubebuilder:validation:Minimum=0
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`

	// ServiceAccountName runs the step pods under this ServiceAccount; its token is
	// mounted unless the ServiceAccount itself disables automounting. By default steps
	// run with no ServiceAccount token at all. The clone pod never gets a token.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="serviceAccountName must be a DNS subdomain"
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// ResumeFrom makes the run continue a failed run of the same namespace, commit and
	// pipeline file: it takes over that run's kept workspace (workspace.retainOnFailure)
	// and runs again only what did not succeed there (docs/resume.md). Creating a run
	// that resumes needs the right to create pods in the namespace: it mounts what
	// another run left.
	// +optional
	ResumeFrom *ResumeSource `json:"resumeFrom,omitempty"`

	// Secrets are the Secrets of the run's namespace that its steps may ask for by name
	// (docs/secrets.md). The creator must be allowed to get each one (config/policy).
	// +optional
	// +kubebuilder:validation:MaxItems=10
	// +listType=map
	// +listMapKey=name
	Secrets []RunSecret `json:"secrets,omitempty"`
}

// WorkspaceSpec sizes the per-run PersistentVolumeClaim. A run's volume is immutable once
// the run exists (rules on PipelineRunSpec, so that a PipelineTrigger's template, which
// holds the same type, stays editable); retainOnFailure, a cleanup policy like the TTL,
// may change.
type WorkspaceSpec struct {
	// Size of the volume.
	// +optional
	// +kubebuilder:default="1Gi"
	Size *resource.Quantity `json:"size,omitempty"`

	// StorageClassName of the volume; the cluster default when empty.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	StorageClassName *string `json:"storageClassName,omitempty"`

	// AccessModes of the volume. With ReadWriteOnce all of a run's pods are pinned to the
	// clone's node, which works on multi-node clusters; with ReadWriteMany they are not.
	// ReadWriteOncePod serves one pod at a time, so a graph with parallel steps is refused.
	// +optional
	// +kubebuilder:default={"ReadWriteOnce"}
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=4
	// +kubebuilder:validation:items:Enum=ReadWriteOnce;ReadOnlyMany;ReadWriteMany;ReadWriteOncePod
	// +listType=set
	AccessModes []corev1.PersistentVolumeAccessMode `json:"accessModes,omitempty"`

	// RetainOnFailure keeps a failed run's workspace this long, for debugging. Otherwise
	// the workspace is deleted as soon as the run ends.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	RetainOnFailure *metav1.Duration `json:"retainOnFailure,omitempty"`
}

// ConcurrencyPolicy is what a run does while another run of its repository and branch
// is active.
// +kubebuilder:validation:Enum=Allow;Forbid;Replace;Queue
type ConcurrencyPolicy string

// The concurrency policies.
const (
	ConcurrencyAllow   ConcurrencyPolicy = "Allow"
	ConcurrencyForbid  ConcurrencyPolicy = "Forbid"
	ConcurrencyReplace ConcurrencyPolicy = "Replace"
	ConcurrencyQueue   ConcurrencyPolicy = "Queue"
)

// PipelineRunPhase is the coarse state of a run, for humans and printer columns. Tools
// should wait on the Succeeded condition instead.
// +kubebuilder:validation:Enum=Queued;Pending;Running;Succeeded;Failed;Cancelled
type PipelineRunPhase string

// The phases of a run.
const (
	PhaseQueued    PipelineRunPhase = "Queued"
	PhasePending   PipelineRunPhase = "Pending"
	PhaseRunning   PipelineRunPhase = "Running"
	PhaseSucceeded PipelineRunPhase = "Succeeded"
	PhaseFailed    PipelineRunPhase = "Failed"
	PhaseCancelled PipelineRunPhase = "Cancelled"
)

// IsFinished reports whether the phase is terminal.
func (p PipelineRunPhase) IsFinished() bool {
	return p == PhaseSucceeded || p == PhaseFailed || p == PhaseCancelled
}

// StepPhase is the state of one step.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed;Cancelled;Skipped
type StepPhase string

// The phases of a step.
const (
	StepPending   StepPhase = "Pending"
	StepRunning   StepPhase = "Running"
	StepSucceeded StepPhase = "Succeeded"
	StepFailed    StepPhase = "Failed"
	StepCancelled StepPhase = "Cancelled"
	StepSkipped   StepPhase = "Skipped"
)

// PipelineRunStatus is written by the operator only, in one patch per reconcile:
// steps[] is derived from the run's Jobs and pods, the commit and pipeline from the
// pinned definition, and the phase and conditions from both and the run's lifecycle.
type PipelineRunStatus struct {
	// ObservedGeneration is the generation the status was last computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Workspace is the PersistentVolumeClaim the run mounts when it is not the one named
	// after the run: a run that resumes another takes that run's over.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Workspace string `json:"workspace,omitempty"`
	// Phase is a summary of the Succeeded condition.
	// +optional
	Phase PipelineRunPhase `json:"phase,omitempty"`
	// Branch is the branch the run builds: spec.branch, or empty when the run is pinned
	// to a revision that is not on spec.branch (among its newest 1000 commits) and is
	// therefore detached, or when that could not be verified.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	Branch string `json:"branch,omitempty"`
	// Detached is true when spec.revision is not on spec.branch, as far as the operator
	// could tell; the commit is checked out on a detached HEAD and FLOWCI_BRANCH is empty.
	// +optional
	Detached bool `json:"detached,omitempty"`
	// Commit is the full SHA being built, pinned when the run starts.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Commit string `json:"commit,omitempty"`
	// ShortCommit is the first 7 characters of Commit.
	// +optional
	// +kubebuilder:validation:MaxLength=12
	ShortCommit string `json:"shortCommit,omitempty"`
	// PipelineName is the name from the pipeline file.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	PipelineName string `json:"pipelineName,omitempty"`
	// DefinitionDigest is sha256:<hex> of the pipeline file that was run.
	// +optional
	// +kubebuilder:validation:MaxLength=71
	DefinitionDigest string `json:"definitionDigest,omitempty"`
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// Progress is ended steps over all steps, such as 2/5.
	// +optional
	// +kubebuilder:validation:MaxLength=16
	Progress string `json:"progress,omitempty"`
	// CurrentStep names the steps that run now, separated by commas.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	CurrentStep string `json:"currentStep,omitempty"`
	// QueuePosition is no longer set. It was the run's place in the queue, which
	// changed for every queued run each time one started: a status write each, so
	// that draining a queue cost writes growing with its length squared. The
	// Succeeded condition's message says what a Queued run waits for.
	// Deprecated: not set.
	// +optional
	QueuePosition int32 `json:"queuePosition,omitempty"`
	// Steps holds one entry per step of the pipeline, in order.
	// +optional
	// +kubebuilder:validation:MaxItems=100
	// +listType=atomic
	Steps []StepStatus `json:"steps,omitempty"`
	// Artifacts sums what the steps kept in the archive.
	// +optional
	Artifacts *ArtifactTotals `json:"artifacts,omitempty"`
	// Caches is what the run restored and saved of each of its pipeline's caches.
	// +optional
	// +kubebuilder:validation:MaxItems=8
	// +listType=atomic
	Caches []CacheStatus `json:"caches,omitempty"`
	// Timing records the clone's times and, once the run ended, its critical path.
	// +optional
	Timing *RunTiming `json:"timing,omitempty"`
	// Conditions: Succeeded is Unknown while the run is active, then True or False.
	// +optional
	// +kubebuilder:validation:MaxItems=8
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`
}

// PipelineRun builds one commit of a git repository: it clones the commit into a
// per-run volume and runs each step of the repository's pipeline file as a Job.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:path=pipelineruns,singular=pipelinerun,scope=Namespaced,shortName=fpr;fprs,categories=flowci;all
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Progress",type=string,JSONPath=`.status.progress`
// +kubebuilder:printcolumn:name="Step",type=string,JSONPath=`.status.currentStep`
// +kubebuilder:printcolumn:name="Commit",type=string,JSONPath=`.status.shortCommit`
// +kubebuilder:printcolumn:name="Branch",type=string,JSONPath=`.status.branch`
// +kubebuilder:printcolumn:name="Started",type=date,JSONPath=`.status.startTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Completed",type=date,JSONPath=`.status.completionTime`,priority=1
// +kubebuilder:printcolumn:name="Repo",type=string,JSONPath=`.spec.repoURL`,priority=1
// +kubebuilder:selectablefield:JSONPath=`.spec.repoURL`
// +kubebuilder:selectablefield:JSONPath=`.spec.branch`
type PipelineRun struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec   PipelineRunSpec   `json:"spec"`
	Status PipelineRunStatus `json:"status,omitempty"`
}

// PipelineRunList is a list of PipelineRuns.
// +kubebuilder:object:root=true
type PipelineRunList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PipelineRun `json:"items"`
}

func init() {
	SchemeBuilder.Register(&PipelineRun{}, &PipelineRunList{})
}

// ResumeSource names the run a run resumes.
type ResumeSource struct {
	// Run is the failed run, in the same namespace, whose workspace the run takes over.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Run string `json:"run"`
	// From names a step of that run: it and every step that depends on it run again,
	// even those that succeeded. Empty: every step that did not succeed, and what
	// depends on it.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	From string `json:"from,omitempty"`
	// UID, when set, pins that run by its UID (flowci resume and triggers set it): a run
	// deleted and created again under the name, by whoever may create runs, is not the
	// run resumed, and its workspace is not taken over.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	UID string `json:"uid,omitempty"`
}
