package v1alpha1

// The label, annotation and field contract of flow-ci. Users, the CLI and the web view
// find a run's children only through these keys, so they are part of the API.

// Labels on every child of a run: the definition ConfigMap, the workspace PVC, the clone
// and step Jobs and their pods.
const (
	// LabelRun is the run's name, shortened and hashed when it does not fit a label
	// value. For humans and kubectl; select on LabelRunUID, because a name can be reused
	// by a later run.
	LabelRun = "flowci.dev/pipelinerun"
	// LabelRunUID is the run's UID, the selector the controller lists children by.
	LabelRunUID = "flowci.dev/pipelinerun-uid"
	// LabelComponent says which kind of child an object is (see the Component values).
	LabelComponent = "flowci.dev/component"
	// LabelStepIndex is a step's index in the pipeline, "0", "1", ... (step Jobs and pods).
	LabelStepIndex = "flowci.dev/step-index"
	// LabelStep is the step's name made into a valid label value (step Jobs and pods).
	// Two names may sanitise alike; LabelStepIndex is unique.
	LabelStep = "flowci.dev/step"
)

// Values of LabelComponent.
const (
	ComponentDefinition = "definition"
	ComponentWorkspace  = "workspace"
	ComponentClone      = "clone"
	ComponentStep       = "step"
	// ComponentHold is a run's hold: a pod that never runs, which keeps room on the
	// node its workspace pins it to for the steps not started yet.
	ComponentHold = "hold"
)

// SchedulingGateHold keeps a run's hold pod from ever being scheduled.
const SchedulingGateHold = "flowci.dev/hold"

// Annotations the operator writes.
const (
	// AnnotationRunName on clone and step pods is the run's full name, since LabelRun
	// may be shortened and pods are owned by their Job, not by the run.
	AnnotationRunName = "flowci.dev/pipelinerun-name"
	// AnnotationCommit on the definition ConfigMap is the commit its file was read at.
	AnnotationCommit = "flowci.dev/commit"
	// AnnotationReplacedBy on a run names the newer run that cancelled it
	// (concurrencyPolicy Replace).
	AnnotationReplacedBy = "flowci.dev/replaced-by"
	// AnnotationAllowedRepositories on a git Secret, when present, lists the
	// repositories runs may use it for: globs of host/path, separated by commas or
	// newlines ("github.com/org/*"). Set by the Secret's owner, it keeps a run creator
	// from sending the credentials to another host.
	AnnotationAllowedRepositories = "flowci.dev/allowed-repositories"
)

// DefinitionKey is the key of the definition ConfigMap that holds the pipeline file's
// raw bytes, exactly as read at the pinned commit.
const DefinitionKey = "flow-ci.yaml"

// Fields of a PipelineRun that the API server can select on (the CRD's selectableFields),
// e.g. `kubectl get fpr --field-selector spec.branch=main`.
const (
	FieldRepoURL = "spec.repoURL"
	FieldBranch  = "spec.branch"
)

// Cache indexes of the operator (client-go field indexers, not server-side fields).
const (
	// IndexRunGroup indexes PipelineRuns by their concurrency group: the normalised
	// repository URL and the branch, within the namespace (see render.GroupKey).
	IndexRunGroup = "flowci.dev/run-group"
	// IndexRunUID indexes Jobs and pods by the UID in their LabelRunUID, so a pass finds
	// a run's children without scanning the namespace's.
	IndexRunUID = "flowci.dev/run-uid"
	// IndexRunState indexes PipelineRuns by IndexUnfinished or IndexFinished: what the
	// queue (unfinished runs everywhere) and a namespace's history (its finished runs)
	// read, without scanning every run.
	IndexRunState = "flowci.dev/run-state"
	// IndexUnfinished and IndexFinished are IndexRunState's keys.
	IndexUnfinished = "unfinished"
	IndexFinished   = "finished"
)

// Labels on the runs a PipelineTrigger creates (besides its controlling owner reference).
const (
	// LabelTrigger is the trigger's name, shortened and hashed when it does not fit.
	LabelTrigger = "flowci.dev/trigger"
	// LabelTriggerUID is the trigger's UID; select on this.
	LabelTriggerUID = "flowci.dev/trigger-uid"
	// LabelTriggerBranch is the branch as a label value (not unique: "release/1" and
	// "release-1" may share it); spec.branch is exact.
	LabelTriggerBranch = "flowci.dev/trigger-branch"
	// LabelSchedule is the schedule that started a run; absent on runs of a new head.
	LabelSchedule = "flowci.dev/schedule"
	// LabelCommit is the commit a triggered run builds (also its spec.revision).
	LabelCommit = "flowci.dev/commit"
	// LabelRerunOf is, on a run a trigger created because someone asked it to run an
	// earlier run again, that earlier run's name.
	LabelRerunOf = "flowci.dev/rerun-of"
)

// Annotations of triggers and triggered runs.
const (
	// AnnotationRequestedAt on a PipelineTrigger asks for a poll now when its value
	// changes (any string, e.g. a time: Flux's requestedAt convention); the value is
	// echoed in status.lastHandledRequestedAt once handled. A webhook relay only needs
	// patch on the trigger to poke it.
	AnnotationRequestedAt = "ci.flowci.dev/requestedAt"
	// AnnotationRerun on a PipelineTrigger asks it to run one of its runs again:
	// "<request id> <run>", or "<request id> <run> latest" to build the head the trigger
	// last saw of that run's branch instead of the same commit, or
	// "<request id> <run> resume [<step>]" to resume a failed one (spec.resumeFrom; the
	// step is the rest of the value). The request id (letters, digits, '.', '_' and '-',
	// at most 32) makes each request new; the value is echoed in status.lastHandledRerun
	// once handled. The new run is the trigger's own, named render.RerunName or
	// render.ResumeName, so it reports its commit status like the run it repeats.
	AnnotationRerun = "ci.flowci.dev/rerun"
	// AnnotationCommitStatus on a triggered run records the commit status last posted
	// to the forge, as JSON {"context","state"} (plus "error" when the forge refused
	// it for good), so that each state is posted once.
	AnnotationCommitStatus = "flowci.dev/commit-status"
	// AnnotationChangesBase on a run is the commit its when.changes filters compare the
	// run's commit with: on a trigger's run of a new head, the branch's last successful
	// build. A run without it counts every file as changed.
	AnnotationChangesBase = "flowci.dev/changes-base"
)

// FinalizerArchive is the run archive's finalizer on a PipelineRun: the run is not
// deleted before its record and logs are stored. The archive adds it when it first sees
// a run and removes it once the run is archived; a run deleted before then waits for at
// most the archive's --hold, and the operator drops a finalizer left longer than its
// --archive-hold-max (an archive that was uninstalled without releasing its runs).
const FinalizerArchive = "flowci.dev/archive"

// ServiceContainerPrefix starts the name of a step pod's container that runs one of the
// step's services (a native sidecar: an init container with restartPolicy Always), so
// that the watchdogs and the archive tell them from the step's own container by name,
// which the operator's trimmed cache keeps.
const ServiceContainerPrefix = "service-"
