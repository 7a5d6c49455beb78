package pipelinerun

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers"
)

// ReasonArchiveHoldExpired: a deleted run waited for the archive longer than
// --archive-hold-max, and the operator let it go.
const ReasonArchiveHoldExpired = "ArchiveHoldExpired"

// boundArchiveHold removes the archive's finalizer from a run deleted longer ago than
// ArchiveHoldMax. The archive releases runs itself, after at most its own --hold; this
// is for an archive that is down or was uninstalled without releasing its runs.
//
// A held run's active Jobs are stopped first: the garbage collector removes a run's
// children only once the run is gone, and until then its steps would run on, so that
// the archive, waiting for their logs to end, would hold the run until --hold.
func (r *Reconciler) boundArchiveHold(ctx context.Context, run *v1alpha1.PipelineRun) (reconcile.Result, error) {
	if !controllerutil.ContainsFinalizer(run, v1alpha1.FinalizerArchive) {
		return reconcile.Result{}, nil
	}
	if err := r.stopActiveJobs(ctx, run); err != nil {
		return reconcile.Result{}, err
	}
	if r.Lifecycle.ArchiveHoldMax <= 0 {
		return reconcile.Result{}, nil
	}
	if left := time.Until(run.DeletionTimestamp.Add(r.Lifecycle.ArchiveHoldMax)); left > 0 {
		return reconcile.Result{RequeueAfter: left}, nil
	}
	if _, err := controllers.SetFinalizer(ctx, r.Client, run, v1alpha1.FinalizerArchive, false); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(fmt.Errorf("removing the archive's finalizer: %w", err))
	}
	if r.Recorder == nil {
		return reconcile.Result{}, nil
	}
	r.Recorder.Eventf(run, nil, corev1.EventTypeWarning, ReasonArchiveHoldExpired, "Release",
		"deleted %s ago and not archived: released without its archive record (--archive-hold-max)", r.Lifecycle.ArchiveHoldMax)
	return reconcile.Result{}, nil
}
