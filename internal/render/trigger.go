package render

import (
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// maxTriggerNamePart and maxRefNamePart keep a triggered run's name readable and
// within a DNS label, with room for its children's suffixes.
const (
	maxTriggerNamePart = 16
	maxRefNamePart     = 20
	runHashLen         = 8
)

// TriggeredRunName is the name of the run a trigger starts for a branch's head:
// <trigger>-<branch>-<commit, 7>-<hash>. It is a function of the trigger (by UID), the
// branch and the commit alone, so creating it again answers AlreadyExists: a restart, a
// second replica or a lost status write never builds a commit twice.
func TriggeredRunName(t *v1alpha1.PipelineTrigger, branch, commit string) string {
	short := commit
	if len(short) > 7 {
		short = short[:7]
	}
	return triggeredName(t.Name, sanitizeRef(branch), short, identity(string(t.UID), "branch", branch, commit))
}

// ScheduledRunName is the name of the run a schedule's slot starts:
// <trigger>-<schedule>-<slot, UTC yyyymmddhhmm>-<hash>, so a slot can fire only once.
func ScheduledRunName(t *v1alpha1.PipelineTrigger, schedule string, slot time.Time) string {
	stamp := slot.UTC().Format("200601021504")
	return triggeredName(t.Name, sanitizeRef(schedule), stamp, identity(string(t.UID), "schedule", schedule, slot.UTC().Format(time.RFC3339)))
}

// RerunName is the name of the run a trigger starts when asked to run source again
// (the ci.flowci.dev/rerun annotation): <trigger>-<branch>-rerun-<hash>, a function of
// the trigger (by UID), the run repeated, the request's id and whether it builds the
// branch's latest head, so the CLI that asked knows the name and a request is built once.
func RerunName(t *v1alpha1.PipelineTrigger, source *v1alpha1.PipelineRun, requestID string, latest bool) string {
	return triggeredName(t.Name, sanitizeRef(source.Spec.Branch), "rerun",
		identity(string(t.UID), "rerun", source.Name, requestID, strconv.FormatBool(latest)))
}

// ResumeName is the name of the run a trigger starts when asked to resume source
// (a ci.flowci.dev/rerun request with "resume"): <trigger>-<branch>-resume-<hash>, a
// function of the trigger (by UID), the run resumed, the request's id and the step it
// resumes from, so the CLI that asked knows the name and a request is built once.
func ResumeName(t *v1alpha1.PipelineTrigger, source *v1alpha1.PipelineRun, requestID, from string) string {
	return triggeredName(t.Name, sanitizeRef(source.Spec.Branch), "resume",
		identity(string(t.UID), "resume", source.Name, requestID, from))
}

func triggeredName(trigger, ref, stamp, ident string) string {
	parts := []string{sanitize(trigger, func(c byte) bool { return isAlnum(c) || c == '-' }, maxTriggerNamePart)}
	if parts[0] == "" {
		parts[0] = "trigger"
	}
	if ref != "" {
		parts = append(parts, ref)
	}
	parts = append(parts, stamp, shortHash(ident)[:runHashLen])
	return strings.Join(parts, "-")
}

func sanitizeRef(s string) string { return sanitize(s, isAlnum, maxRefNamePart) }

// TriggeredRun renders the run a trigger starts: the trigger's repository and git
// Secret, the branch, the commit pinned as revision, the trigger's template, labels that
// select it by trigger, branch, commit and schedule, and the trigger as its controlling
// owner (deleting the trigger deletes its runs, unless deleted with --cascade=orphan).
// schedule is empty for a run of a new head.
func TriggeredRun(t *v1alpha1.PipelineTrigger, name, branch, commit, schedule string) *v1alpha1.PipelineRun {
	tpl := t.Spec.Template.DeepCopy()
	labels := map[string]string{
		v1alpha1.LabelTrigger:       labelValue(t.Name),
		v1alpha1.LabelTriggerUID:    labelValue(string(t.UID)),
		v1alpha1.LabelTriggerBranch: labelValue(branch),
		v1alpha1.LabelCommit:        labelValue(commit),
	}
	if schedule != "" {
		labels[v1alpha1.LabelSchedule] = schedule
	}
	if t.Spec.CacheWrite {
		labels[v1alpha1.LabelCacheWrite] = "true"
	}
	run := &v1alpha1.PipelineRun{
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       t.Namespace,
			Labels:          labels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(t, v1alpha1.GroupVersion.WithKind("PipelineTrigger"))},
		},
		Spec: v1alpha1.PipelineRunSpec{
			RepoURL:                 t.Spec.RepoURL,
			Branch:                  branch,
			Revision:                commit,
			PipelinePath:            tpl.PipelinePath,
			Timeout:                 tpl.Timeout,
			Workspace:               tpl.Workspace,
			ConcurrencyPolicy:       tpl.ConcurrencyPolicy,
			TTLSecondsAfterFinished: tpl.TTLSecondsAfterFinished,
			ServiceAccountName:      tpl.ServiceAccountName,
			Secrets:                 ExposedSecrets(tpl.Secrets, branch, triggeredEvent(schedule)),
		},
	}
	if ref := t.Spec.GitSecretRef; ref != nil {
		run.Spec.GitSecretRef = ref.DeepCopy()
	}
	return run
}

// SetChangesBase records on run the commit its when.changes filters compare with; ""
// records nothing (every file counts as changed).
func SetChangesBase(run *v1alpha1.PipelineRun, base string) {
	if base == "" {
		return
	}
	if run.Annotations == nil {
		run.Annotations = map[string]string{}
	}
	run.Annotations[v1alpha1.AnnotationChangesBase] = base
}

// triggeredEvent is the event of a triggered run: a schedule's, or a new head's push.
func triggeredEvent(schedule string) v1alpha1.Event {
	if schedule != "" {
		return v1alpha1.EventSchedule
	}
	return v1alpha1.EventPush
}

// ExposedSecrets are the Secrets of a trigger's template that a run of branch started
// by event may expose: those whose branches and events both match (empty branches match
// all; empty events match push and schedule, never a pull request).
// A bad glob matches nothing, so it can only withhold a Secret.
func ExposedSecrets(secrets []v1alpha1.TriggerSecret, branch string, event v1alpha1.Event) []v1alpha1.RunSecret {
	var out []v1alpha1.RunSecret
	for _, s := range secrets {
		listed := slices.Contains(s.Events, event) || len(s.Events) == 0 && event != v1alpha1.EventPullRequest
		if listed && globsMatch(s.Branches, branch) {
			out = append(out, v1alpha1.RunSecret{Name: s.Name})
		}
	}
	return out
}

func globsMatch(globs []string, name string) bool {
	if len(globs) == 0 {
		return true
	}
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// Rerun renders the run a trigger starts when asked to run source again: a run of the
// trigger like any other (TriggeredRun), of source's branch at commit, labelled with
// the run it repeats and, for a schedule's run, with that schedule, so it reports its
// commit status under the same context and a red check can turn green.
//
// A pull request's run is run again as the pull request's, with the trust it had: a
// fork's rerun gets no Secret and no ServiceAccount either.
func Rerun(t *v1alpha1.PipelineTrigger, name string, source *v1alpha1.PipelineRun, commit string) *v1alpha1.PipelineRun {
	if n, err := strconv.Atoi(source.Labels[v1alpha1.LabelPullRequest]); err == nil {
		run := PullRequestRun(t, name, n, source.Spec.Branch, commit, source.Labels[v1alpha1.LabelUntrusted] == "")
		run.Labels[v1alpha1.LabelRerunOf] = labelValue(source.Name)
		return run
	}
	run := TriggeredRun(t, name, source.Spec.Branch, commit, source.Labels[v1alpha1.LabelSchedule])
	run.Labels[v1alpha1.LabelRerunOf] = labelValue(source.Name)
	return run
}

// Resume renders the run a trigger starts when asked to resume source: its rerun at
// the commit source built, with spec.resumeFrom naming source (and from, the step to
// resume from), so it continues in source's kept workspace and reports its commit
// status under the same context.
func Resume(t *v1alpha1.PipelineTrigger, name string, source *v1alpha1.PipelineRun, from string) *v1alpha1.PipelineRun {
	run := Rerun(t, name, source, source.Status.Commit)
	run.Spec.ResumeFrom = &v1alpha1.ResumeSource{Run: source.Name, From: from, UID: string(source.UID)}
	return run
}

// SameTriggeredRun says whether an existing run is the one the trigger would create
// (want): the trigger's labels and the spec it renders, with the defaults the CRD
// applies filled in on both sides. A trigger adopts a run of its name only then, since
// a run claiming to be the trigger's could otherwise make it report on whatever the
// run builds.
func SameTriggeredRun(existing, want *v1alpha1.PipelineRun) bool {
	for k, v := range want.Labels {
		if existing.Labels[k] != v {
			return false
		}
	}
	a, b := defaultedSpec(existing.Spec), defaultedSpec(want.Spec)
	a.Cancel, a.Abort = false, false // a cancelled run is still the trigger's
	return equality.Semantic.DeepEqual(a, b)
}

// defaultedSpec is spec with the CRD's defaults applied where it sets none.
func defaultedSpec(spec v1alpha1.PipelineRunSpec) v1alpha1.PipelineRunSpec {
	spec = *spec.DeepCopy()
	if spec.Branch == "" {
		spec.Branch = "main"
	}
	if spec.PipelinePath == "" {
		spec.PipelinePath = "build/flow-ci.yaml"
	}
	if spec.Timeout == nil {
		spec.Timeout = &metav1.Duration{Duration: v1alpha1.DefaultTimeout}
	}
	if spec.ConcurrencyPolicy == "" {
		spec.ConcurrencyPolicy = v1alpha1.ConcurrencyAllow
	}
	size := spec.Workspace.SizeOrDefault()
	spec.Workspace.Size = &size
	if len(spec.Workspace.AccessModes) == 0 {
		spec.Workspace.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	}
	return spec
}
