package render

import (
	"strings"
	"time"

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
		},
	}
	if ref := t.Spec.GitSecretRef; ref != nil {
		run.Spec.GitSecretRef = ref.DeepCopy()
	}
	return run
}
