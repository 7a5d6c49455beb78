package pipelinerun

import (
	"context"
	"errors"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/render"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

const (
	// holdRecheck is how soon a pass looks again when the hold waits for step pods to
	// be bound and their bind event was missed, or when a hold call failed.
	holdRecheck = 10 * time.Second
	// holdLookup is how long after a run's last step started, or after it ended, a
	// pass that finds no hold in the cache reads the API server for one: a hold whose
	// labels a tenant changed has left the cache, and must still go.
	holdLookup = 5 * time.Minute
)

// reconcileHold keeps the run's hold (render.RenderHoldPod) from the moment its clone
// pod is bound to a node until every step that will run has its pod bound there, and
// releases it then. It never ends the pass: a run whose hold fails goes on without one.
func (r *Reconciler) reconcileHold(ctx context.Context, s *scope) (bool, error) {
	if r.Render.StepPriorityClass == "" || !render.NeedsOneNode(s.run) || s.def == nil {
		return false, nil
	}
	hold, node := heldBy(s), holdNode(s)
	need := runstate.HoldNone
	if node != "" {
		need = runstate.HoldFor(s.run.Status.Steps, s.stepJobs, s.pods)
	}
	var err error
	switch {
	case need == runstate.HoldNone:
		err = r.releaseHold(ctx, s, hold)
	case hold == nil && need == runstate.HoldBinding:
		// Released already, or never made: a step's retry or a pod that left the
		// cache early does not bring a hold back mid-run.
	default:
		if need == runstate.HoldBinding {
			s.wakeAt(s.now.Add(holdRecheck)) // should a bind event be missed
		}
		err = r.keepHold(ctx, s, hold, node)
	}
	if err != nil {
		log.FromContext(ctx).Info("the run's hold", "error", err.Error())
		s.wakeAt(s.now.Add(holdRecheck))
	}
	return false, nil
}

// keepHold creates the hold if the run has none, and nominates it to node.
func (r *Reconciler) keepHold(ctx context.Context, s *scope, hold *corev1.Pod, node string) error {
	if hold != nil && hold.Status.NominatedNodeName == node {
		return nil
	}
	peak := render.PeakRequests(&s.def.Pipeline, r.Render, r.Lifecycle.maxParallelSteps(), runstate.Reused(s.run))
	if len(peak) == 0 {
		return nil
	}
	rendered := render.RenderHoldPod(s.run, r.Render, node, peak)
	live := rendered.DeepCopy()
	if hold == nil {
		// Created, or adopted once ensureChild compared it (sameChild: sameHold), live is
		// the server's copy: no need to read it back.
		err := r.ensureChild(ctx, s.run, live)
		var refused *runError
		if errors.As(err, &refused) {
			// A quota, a policy, or a pod of that name not the run's: the run goes
			// on without its hold, as it would with the hold turned off.
			log.FromContext(ctx).Info("running without a hold", "reason", refused.reason, "error", err.Error())
			return nil
		}
		if err != nil {
			return err
		}
	} else if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(rendered), live); err != nil {
		return client.IgnoreNotFound(err)
	}
	return r.nominate(ctx, s, live, rendered, node)
}

// nominate sets the hold's status.nominatedNodeName to node: the scheduler counts a
// nominated pod's requests on that node against every pod of its priority or lower,
// which is what keeps the room. Anyone who may create pods in the namespace can make
// one named and owned like the hold, so the pod, as the API server has it (live), must
// be the rendered hold in all the scheduler reads (sameHold), with no finalizer (a
// deleted hold must not linger, nominated, outside the quota); the patch is bound to
// live's UID.
func (r *Reconciler) nominate(ctx context.Context, s *scope, live, rendered *corev1.Pod, node string) error {
	if why := sameHold(live, rendered); why != "" || !ownedBy(live, s.run) || len(live.Finalizers) > 0 || !live.DeletionTimestamp.IsZero() {
		log.FromContext(ctx).Info("running without a hold: a pod of its name is not the one the run would create", "pod", live.Name, "why", why)
		return nil
	}
	if live.Status.NominatedNodeName == node {
		return nil
	}
	return r.patchNomination(ctx, live, fmt.Sprintf("%q", node))
}

// patchNomination sets the pod's nominatedNodeName (JSON: a quoted name, or null), on
// the condition that it is still the pod read.
func (r *Reconciler) patchNomination(ctx context.Context, pod *corev1.Pod, node string) error {
	patch := fmt.Appendf(nil, `{"metadata":{"uid":%q},"status":{"nominatedNodeName":%s}}`, pod.UID, node)
	err := r.Client.Status().Patch(ctx, pod, client.RawPatch(types.MergePatchType, patch))
	if client.IgnoreNotFound(err) != nil && !apierrors.IsConflict(err) {
		return fmt.Errorf("nominating the hold %s: %w", pod.Name, err)
	}
	return nil
}

// releaseHold takes the hold's nomination back and deletes it. It finds the hold in the
// cache, or, shortly after the run's steps started or the run ended, on the API server.
func (r *Reconciler) releaseHold(ctx context.Context, s *scope, cached *corev1.Pod) error {
	if cached == nil && !holdMayLinger(s) {
		return nil
	}
	live := &corev1.Pod{}
	if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: s.run.Namespace, Name: render.HoldPodName(s.run)}, live); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !ownedBy(live, s.run) || !holdShaped(live, r.Render) {
		return nil
	}
	if live.Status.NominatedNodeName != "" {
		if err := r.patchNomination(ctx, live, "null"); err != nil {
			return err
		}
	}
	if !live.DeletionTimestamp.IsZero() {
		return nil
	}
	uid := live.UID
	if err := r.Client.Delete(ctx, live, client.GracePeriodSeconds(0), client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting the hold %s: %w", live.Name, err)
	}
	log.FromContext(ctx).V(1).Info("released the hold", "pod", live.Name, "component", v1alpha1.ComponentHold)
	return nil
}

// holdMayLinger says a hold missing from the cache may still exist: the run's last step
// started, or the run ended, within holdLookup.
func holdMayLinger(s *scope) bool {
	last := time.Time{}
	if t := s.run.Status.CompletionTime; t != nil {
		last = t.Time
	}
	for _, st := range s.run.Status.Steps {
		if st.StartTime != nil && st.StartTime.After(last) {
			last = st.StartTime.Time
		}
	}
	return !last.IsZero() && s.now.Sub(last) < holdLookup
}

// heldBy is the run's hold pod, if the cache has one (read only).
func heldBy(s *scope) *corev1.Pod {
	name := render.HoldPodName(s.run)
	for i := range s.pods {
		if p := &s.pods[i]; p.Name == name && ownedBy(p, s.run) {
			return p
		}
	}
	return nil
}

// holdNode is the node the run's pods are pinned to: while the clone runs, the node its
// pod is bound to ("" while it is not, or failed and waits for its retry, which the
// hold must not crowd out); after it, the node the steps are pinned to.
func holdNode(s *scope) string {
	if s.cloneJob != nil && runstate.JobOutcome(s.cloneJob) != batchv1.JobComplete {
		p := runstate.LatestPod(s.pods, s.cloneJob)
		if p == nil || p.Spec.NodeName == "" || p.Status.Phase == corev1.PodFailed {
			return ""
		}
		return p.Spec.NodeName
	}
	return pinnedNode(s)
}
