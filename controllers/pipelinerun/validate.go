package pipelinerun

import (
	"context"
	"errors"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gitsource"
)

// validateSpec re-checks the repo URL and branch, which the CRD already validated,
// because the controller must not trust that the CRD in the cluster is ours, and holds
// a run not yet admitted to the operator's workspace bounds. It sets nothing; a run
// that fails ends with InvalidSpec (AddressNotAllowed for a denied address) before it
// has any child.
func (r *Reconciler) validateSpec(_ context.Context, s *scope) (bool, error) {
	spec := &s.run.Spec
	if err := gitsource.ValidateURL(spec.RepoURL, gitsource.WithAllowedNetworks(r.AllowedNetworks...)); err != nil {
		reason := v1alpha1.ReasonInvalidSpec
		if errors.Is(err, gitsource.ErrAddressNotAllowed) {
			reason = v1alpha1.ReasonAddressNotAllowed
		}
		return false, permanent(reason, "spec.repoURL: %w", err)
	}
	if spec.Revision == "" {
		if err := gitsource.ValidateBranch(spec.Branch); err != nil {
			return false, permanent(v1alpha1.ReasonInvalidSpec, "spec.branch: %w", err)
		}
	}
	l := r.Lifecycle
	if s.run.Status.StartTime != nil {
		return false, nil // admitted under the bounds of its time; retainOnFailure edits are clamped (cleanupWorkspace)
	}
	if size := spec.Workspace.SizeOrDefault(); !l.MaxWorkspaceSize.IsZero() && size.Cmp(l.MaxWorkspaceSize) > 0 {
		return false, permanent(v1alpha1.ReasonInvalidSpec, "spec.workspace.size %s is more than the operator allows (--max-workspace-size %s)",
			size.String(), l.MaxWorkspaceSize.String())
	}
	if keep := spec.Workspace.RetainOnFailure; keep != nil && l.MaxRetainOnFailure > 0 && keep.Duration > l.MaxRetainOnFailure {
		return false, permanent(v1alpha1.ReasonInvalidSpec, "spec.workspace.retainOnFailure %s is longer than the operator allows (--max-retain-on-failure %s)",
			keep.Duration, l.MaxRetainOnFailure)
	}
	return false, nil
}
