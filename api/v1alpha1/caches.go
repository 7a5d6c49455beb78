package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// LabelCacheWrite marks a run whose trigger lets it save its caches (spec.cacheWrite),
// set by the operator only: under flowci.dev/trigger, which admission reserves to it.
const LabelCacheWrite = "flowci.dev/trigger-cache-write"

// CachesReportPrefix starts the last line of the termination message of the clone
// (what it restored) and of the step that saves caches (what it saved): JSON the
// operator copies into status.caches.
const CachesReportPrefix = "flowci-caches: "

// MaxRunCaches bounds status.caches, as the pipeline's caches are.
const MaxRunCaches = 8

// SavesCaches says whether a run may save its caches: a trigger with cacheWrite started
// it (the label only the operator sets) and it is not a pull request's (the trigger
// never labels those, and a rerun keeps their labels). The
// operator adds the saving step by this rule, from labels alone, so that every pass
// and every replica sees the same steps; the archive checks it again, and refuses a
// run that builds no branch too (a revision that is not on its branch is detached).
// Everything else restores and never saves.
func SavesCaches(run *PipelineRun) bool {
	return run.Labels[LabelCacheWrite] == "true" && run.Labels[LabelUntrusted] == "" && run.Labels[LabelPullRequest] == ""
}

// CacheStatus is what a run restored and saved of one of its caches.
type CacheStatus struct {
	// Name of the cache, from the pipeline file.
	// +kubebuilder:validation:MaxLength=32
	Name string `json:"name"`
	// Key is the key the run computed from its files.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	Key string `json:"key,omitempty"`
	// RestoredKey is the key of the entry restored ("" on a miss), RestoredFrom the
	// branch that saved it.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	RestoredKey string `json:"restoredKey,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxLength=255
	RestoredFrom string `json:"restoredFrom,omitempty"`
	// RestoredBytes is the entry's compressed size; RestoreTime how long the restore
	// took.
	// +optional
	RestoredBytes int64 `json:"restoredBytes,omitempty"`
	// +optional
	RestoreTime *metav1.Duration `json:"restoreTime,omitempty"`
	// Saved is true once the run saved the cache (it is found by later runs only if the
	// run succeeds); SavedBytes its compressed size, SaveTime how long it took.
	// +optional
	Saved bool `json:"saved,omitempty"`
	// +optional
	SavedBytes int64 `json:"savedBytes,omitempty"`
	// +optional
	SaveTime *metav1.Duration `json:"saveTime,omitempty"`
	// Message says why a restore or save did not happen, or what it skipped.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Message string `json:"message,omitempty"`
}
