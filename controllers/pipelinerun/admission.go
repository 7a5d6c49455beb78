package pipelinerun

import (
	"context"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gitsource"
	"github.com/flow-ci/flow-ci/internal/render"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

// validateSpec re-checks the repo URL and branch, which the CRD already validated,
// because the controller must not trust that the CRD in the cluster is ours, and holds
// the workspace to the operator's bounds. A run that fails them ends with InvalidSpec
// (AddressNotAllowed for a denied address) before it has any child.
func (r *Reconciler) validateSpec(_ context.Context, s *scope) error {
	spec := &s.run.Spec
	if err := gitsource.ValidateURL(spec.RepoURL, gitsource.WithAllowedNetworks(r.AllowedNetworks...)); err != nil {
		reason := v1alpha1.ReasonInvalidSpec
		if errors.Is(err, gitsource.ErrAddressNotAllowed) {
			reason = v1alpha1.ReasonAddressNotAllowed
		}
		return permanent(reason, "spec.repoURL: %w", err)
	}
	if spec.Revision == "" {
		if err := gitsource.ValidateBranch(spec.Branch); err != nil {
			return permanent(v1alpha1.ReasonInvalidSpec, "spec.branch: %w", err)
		}
	}
	l := r.Lifecycle
	if s.run.Status.StartTime != nil {
		return nil // admitted under the bounds of its time; retainOnFailure edits are clamped (cleanupWorkspace)
	}
	if size := spec.Workspace.SizeOrDefault(); !l.MaxWorkspaceSize.IsZero() && size.Cmp(l.MaxWorkspaceSize) > 0 {
		return permanent(v1alpha1.ReasonInvalidSpec, "spec.workspace.size %s is more than the operator allows (--max-workspace-size %s)",
			size.String(), l.MaxWorkspaceSize.String())
	}
	if keep := spec.Workspace.RetainOnFailure; keep != nil && l.MaxRetainOnFailure > 0 && keep.Duration > l.MaxRetainOnFailure {
		return permanent(v1alpha1.ReasonInvalidSpec, "spec.workspace.retainOnFailure %s is longer than the operator allows (--max-retain-on-failure %s)",
			keep.Duration, l.MaxRetainOnFailure)
	}
	return nil
}

// reconcileAdmission decides when a new run may start. It applies the run's
// concurrencyPolicy against older active runs of the same repository and branch in the
// namespace, then the operator's --max-active-runs. A run that must wait is Queued with
// its position; once admitted it gets its startTime, from which spec.timeout counts.
func (r *Reconciler) reconcileAdmission(ctx context.Context, s *scope) error {
	run := s.run
	if run.Status.StartTime != nil {
		return nil
	}
	if run.Spec.Revision == "" {
		run.Status.Branch = run.Spec.Branch // a pinned revision is checked first
	}
	now := metav1.NewTime(s.now)
	if job := r.fetches.state(run.UID); job != nil {
		now = metav1.NewTime(job.admitted) // admitted in a pass whose status was not written
	}
	if run.Spec.Cancel {
		runstate.End(run, runstate.Ending{Phase: v1alpha1.PhaseCancelled, Reason: v1alpha1.ReasonCancelled, Message: "cancelled before it started"}, now)
		return nil
	}
	group, err := r.groupOf(ctx, run)
	if err != nil {
		return err
	}
	var older []*v1alpha1.PipelineRun
	for _, o := range group {
		if o.UID != run.UID && !o.Status.Phase.IsFinished() && o.DeletionTimestamp.IsZero() && runstate.CreatedBefore(o, run) {
			older = append(older, o)
		}
	}
	switch run.Spec.ConcurrencyPolicy {
	case v1alpha1.ConcurrencyForbid:
		if len(older) > 0 {
			return permanent(v1alpha1.ReasonConcurrencyForbidden,
				"run %q of the same repository and branch is active (concurrencyPolicy: Forbid)", older[0].Name)
		}
	case v1alpha1.ConcurrencyReplace:
		for _, o := range older {
			if err := r.replace(ctx, o, run); err != nil {
				return err
			}
		}
	case v1alpha1.ConcurrencyQueue:
		if len(older) > 0 {
			runstate.Queue(run, len(older), fmt.Sprintf("waiting for %d older run(s) of this repository and branch (concurrencyPolicy: Queue)", len(older)))
			s.wait = true
			return nil
		}
	}
	if limit := r.Lifecycle.MaxActiveRuns; limit > 0 {
		active, position, err := r.fairPosition(ctx, run)
		if err != nil {
			return err
		}
		if position > limit-active {
			runstate.Queue(run, position-max(limit-active, 0), fmt.Sprintf("waiting: %d of at most %d runs are active (--max-active-runs, shared fairly between namespaces)", active, limit))
			s.wait = true
			return nil
		}
	}
	runstate.Admit(run, now)
	return nil
}

// replace cancels an older run of the group on behalf of a newer one.
func (r *Reconciler) replace(ctx context.Context, old, by *v1alpha1.PipelineRun) error {
	if old.Spec.Cancel {
		return nil
	}
	old = old.DeepCopy() // a shared copy from the cache
	patch := client.MergeFrom(old.DeepCopy())
	old.Spec.Cancel = true
	if old.Annotations == nil {
		old.Annotations = map[string]string{}
	}
	old.Annotations[v1alpha1.AnnotationReplacedBy] = by.Name
	if err := r.Client.Patch(ctx, old, patch); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("cancelling run %s replaced by this one: %w", old.Name, err)
	}
	return nil
}

// groupOf lists the runs of the run's repository and branch in its namespace, through
// the cache's group index; the group comes from each run's spec.
func (r *Reconciler) groupOf(ctx context.Context, run *v1alpha1.PipelineRun) ([]*v1alpha1.PipelineRun, error) {
	list := &v1alpha1.PipelineRunList{}
	err := r.Client.List(ctx, list, client.InNamespace(run.Namespace), client.UnsafeDisableDeepCopy,
		client.MatchingFields{v1alpha1.IndexRunGroup: render.GroupKey(run.Spec.RepoURL, run.Spec.Branch)})
	if err != nil {
		return nil, fmt.Errorf("listing runs: %w", err)
	}
	out := make([]*v1alpha1.PipelineRun, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out, nil
}

// fairPosition counts the admitted, unfinished runs everywhere the operator watches, and
// the run's place (from 1) in the fair queue of runs waiting for a slot.
func (r *Reconciler) fairPosition(ctx context.Context, run *v1alpha1.PipelineRun) (active, position int, err error) {
	list := &v1alpha1.PipelineRunList{}
	if err := r.Client.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return 0, 0, fmt.Errorf("listing runs: %w", err)
	}
	var cs []runstate.Candidate
	self := -1
	for i := range list.Items {
		o := &list.Items[i]
		if o.Status.Phase.IsFinished() || !o.DeletionTimestamp.IsZero() {
			continue
		}
		if o.UID == run.UID {
			self = len(cs)
		}
		cs = append(cs, runstate.Candidate{Namespace: o.Namespace, Name: o.Name, Created: o.CreationTimestamp.Time, Active: o.Status.StartTime != nil})
		if o.Status.StartTime != nil {
			active++
		}
	}
	if self < 0 { // not in the cache yet
		self = len(cs)
		cs = append(cs, runstate.Candidate{Namespace: run.Namespace, Name: run.Name, Created: run.CreationTimestamp.Time})
	}
	for n, i := range runstate.FairQueue(cs) {
		if i == self {
			return active, n + 1, nil
		}
	}
	return active, len(cs), nil
}

// wakeQueued enqueues every Queued run when another run ends or goes away, since that
// may free the place they wait for. Only those transitions list runs, so a burst of
// status updates costs nothing here.
func (r *Reconciler) wakeQueued(ctx context.Context, changed client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	list := &v1alpha1.PipelineRunList{}
	if err := r.Client.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return
	}
	for _, o := range list.Items {
		if o.Status.Phase == v1alpha1.PhaseQueued && o.UID != changed.GetUID() {
			q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.Namespace, Name: o.Name}})
		}
	}
}
