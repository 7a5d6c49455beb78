package pipelinerun

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/render"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

// holdRecheck is how often a pass looks again while the hold waits only for step pods
// to be bound: their binding is not an event the run is reconciled on.
const holdRecheck = 2 * time.Second

// reconcileHold keeps the run's hold (render.RenderHoldPod) from the moment its clone
// pod is bound to a node until every step that will run has its pod bound there, and
// deletes it then. It never ends the pass.
func (r *Reconciler) reconcileHold(ctx context.Context, s *scope) (bool, error) {
	hold := heldBy(s)
	node := holdNode(s)
	need := runstate.HoldNone
	if r.Render.StepPriorityClass != "" && render.NeedsOneNode(s.run) && s.def != nil && node != "" {
		need = runstate.HoldFor(s.run.Status.Steps, s.stepJobs, s.pods)
	}
	if need == runstate.HoldNone {
		return false, r.deleteHold(ctx, hold)
	}
	if need == runstate.HoldBinding {
		s.wakeAt(s.now.Add(holdRecheck))
	}
	peak := render.PeakRequests(&s.def.Pipeline, r.Render, r.Lifecycle.maxParallelSteps())
	if len(peak) == 0 {
		return false, nil
	}
	if hold == nil {
		pod := render.RenderHoldPod(s.run, r.Render, node, peak)
		if err := r.ensureChild(ctx, s.run, pod); err != nil {
			var refused *runError
			if errors.As(err, &refused) {
				// A quota, a policy, or a pod of that name not ours: the run goes on
				// without its hold, as it would with the hold turned off.
				log.FromContext(ctx).Info("running without a hold", "reason", refused.reason, "error", err.Error())
				return false, nil
			}
			return false, err
		}
		hold = pod
	}
	if hold.Status.NominatedNodeName == node {
		return false, nil
	}
	return false, r.nominate(ctx, s, hold, render.RenderHoldPod(s.run, r.Render, node, peak), node)
}

// nominate sets the hold's status.nominatedNodeName to the run's node: the scheduler
// counts a nominated pod's requests on that node against every pod of its priority or
// lower, which is what keeps the room. Anyone who may create pods in the namespace can
// make one named and owned like the hold, so the pod is read back and compared with
// the rendered hold first (a forged one would get a tenant's requests nominated), and
// the patch is bound to the UID read.
func (r *Reconciler) nominate(ctx context.Context, s *scope, hold, rendered *corev1.Pod, node string) error {
	live := &corev1.Pod{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(hold), live); err != nil {
		return client.IgnoreNotFound(err)
	}
	if why := sameChild(live, rendered); why != "" || !ownedBy(live, s.run) {
		log.FromContext(ctx).Info("running without a hold: a pod of its name is not the one the run would create", "pod", live.Name, "why", why)
		return nil
	}
	patch := fmt.Appendf(nil, `{"metadata":{"uid":%q},"status":{"nominatedNodeName":%q}}`, live.UID, node)
	if err := r.Client.Status().Patch(ctx, live, client.RawPatch(types.MergePatchType, patch)); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("nominating the hold %s: %w", live.Name, err)
	}
	return nil
}

// heldBy is the run's hold pod, if it has one (cached: read only).
func heldBy(s *scope) *corev1.Pod {
	name := render.HoldPodName(s.run)
	for i := range s.pods {
		if p := &s.pods[i]; p.Name == name && ownedBy(p, s.run) {
			return p
		}
	}
	return nil
}

// holdNode is the node the run's pods are pinned to: the clone pod's once it is bound,
// else where the clone ran or the steps are pinned.
func holdNode(s *scope) string {
	if s.cloneJob != nil {
		if p := runstate.LatestPod(s.pods, s.cloneJob); p != nil && p.Spec.NodeName != "" {
			return p.Spec.NodeName
		}
	}
	return pinnedNode(s)
}

// deleteHold deletes the hold, by UID.
func (r *Reconciler) deleteHold(ctx context.Context, hold *corev1.Pod) error {
	if hold == nil || !hold.DeletionTimestamp.IsZero() {
		return nil
	}
	target := &corev1.Pod{}
	target.Namespace, target.Name = hold.Namespace, hold.Name
	uid := hold.UID
	err := r.Client.Delete(ctx, target, client.GracePeriodSeconds(0), client.Preconditions{UID: &uid})
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting the hold %s: %w", hold.Name, err)
	}
	log.FromContext(ctx).V(1).Info("released the hold", "pod", hold.Name, "component", v1alpha1.ComponentHold)
	return nil
}
