package pipelinerun

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/render"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

// lostNode applies the node-lost watchdog (--node-lost-timeout) when a pod of the run
// suggests its node is gone: a running pod the node controller marked not ready, or a pod
// its Job pins to the workspace's node that the scheduler cannot place. Nodes are read
// only then, through the cache, so a healthy run never reads one.
func (r *Reconciler) lostNode(ctx context.Context, s *scope, active []activeJob) runstate.Verdict {
	if r.Lifecycle.NodeLost <= 0 {
		return runstate.Verdict{}
	}
	var names []string
	for _, a := range active {
		pod := runstate.LatestPod(s.pods, a.job)
		switch {
		case runstate.NotReadyOnItsNode(pod):
			names = append(names, pod.Spec.NodeName)
		case runstate.Unscheduled(pod) != nil && render.PinnedNode(a.job) != "":
			names = append(names, render.PinnedNode(a.job))
		}
	}
	var out runstate.Verdict
	for _, name := range names {
		node, err := r.getNode(ctx, name)
		if err != nil {
			// An operator that may not read Nodes runs with --node-lost-timeout=0.
			log.FromContext(ctx).Error(err, "reading the node of a run's pod", "node", name)
			continue
		}
		v := r.Lifecycle.CheckNode(name, node, s.now)
		if v.Reason != "" {
			return v
		}
		if out.Next.IsZero() || (!v.Next.IsZero() && v.Next.Before(out.Next)) {
			out.Next = v.Next
		}
	}
	return out
}

// getNode reads a Node through the cache, within 5 s: nil, and no error, when it is gone.
func (r *Reconciler) getNode(ctx context.Context, name string) (*corev1.Node, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	node := &corev1.Node{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: name}, node); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return node, nil
}

// releaseLostPods deletes, without grace, the unfinished pods of a run that ended
// NodeLost which are on a node that stopped answering (or is gone). Their Jobs are
// deleted already, but such a pod stays Terminating until its node returns, and with it
// the workspace's claim (its protection finalizer waits for the pods): this is what an
// administrator does by hand for a lost node. Only pods that carry the run's UID and a
// Job controller go, matched by label, since the Jobs may be gone by a later pass; their
// containers, if the node is merely cut off, are stopped by its kubelet when it returns.
func (r *Reconciler) releaseLostPods(ctx context.Context, s *scope) error {
	c := apimeta.FindStatusCondition(s.run.Status.Conditions, v1alpha1.ConditionSucceeded)
	if c == nil || c.Reason != v1alpha1.ReasonNodeLost {
		return nil
	}
	for i := range s.pods {
		p := &s.pods[i]
		if !runstate.LostRunPod(p, string(s.run.UID)) || !r.nodeLost(ctx, p.Spec.NodeName) {
			continue
		}
		if err := r.Client.Delete(ctx, p, client.GracePeriodSeconds(0), client.Preconditions{UID: &p.UID}); client.IgnoreNotFound(err) != nil {
			return err
		}
		log.FromContext(ctx).Info("deleted without grace the pod of a run whose node was lost", "pod", p.Name, "node", p.Spec.NodeName)
	}
	return nil
}

// nodeLost says whether the node stopped answering (Ready Unknown) or is gone.
func (r *Reconciler) nodeLost(ctx context.Context, name string) bool {
	node, err := r.getNode(ctx, name)
	return err == nil && (node == nil || runstate.Unanswering(node) != nil)
}
