package archive

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	authv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/archive/api"
	"github.com/flow-ci/flow-ci/internal/pipeline"
	"github.com/flow-ci/flow-ci/internal/webview"
)

// The claims a pod-bound ServiceAccount token carries (TokenReview's user extra).
const (
	extraPodName = "authentication.kubernetes.io/pod-name"
	extraPodUID  = "authentication.kubernetes.io/pod-uid"
)

// Agents authenticates the pods of runs that call the archive: a token of
// api.AgentAudience that the API server says is bound to a pod that has not ended, is a
// clone or step pod of a Job controlled by a PipelineRun, and carries that run's UID. Everything
// it trusts comes from the API server (the review) and the archive's cache of pods,
// Jobs and runs, never from the request.
type Agents struct {
	Reviews authv1client.TokenReviewInterface
	Client  client.Reader
	// APIReader reads a pod the cache has not seen start yet: a step that ends at once
	// uploads before its Running phase reaches the archive's informer.
	APIReader client.Reader
}

var _ api.Agents = Agents{}

// AuthenticateAgent implements api.Agents.
func (a Agents) AuthenticateAgent(ctx context.Context, token string) (api.Agent, error) {
	tr, err := a.Reviews.Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{
		Token: token, Audiences: []string{api.AgentAudience}}}, metav1.CreateOptions{})
	if err != nil {
		return api.Agent{}, fmt.Errorf("reviewing the token: %w", err)
	}
	ns, pod, uid, ok := boundPod(tr.Status)
	if !ok {
		return api.Agent{}, webview.ErrUnauthenticated
	}
	p, err := a.pod(ctx, client.ObjectKey{Namespace: ns, Name: pod}, types.UID(uid))
	if err != nil {
		return api.Agent{}, unauthenticatedIfGone(err)
	}
	job := &batchv1.Job{}
	owner := metav1.GetControllerOf(p)
	if owner == nil || owner.Kind != "Job" {
		return api.Agent{}, webview.ErrUnauthenticated
	}
	if err := a.get(ctx, client.ObjectKey{Namespace: ns, Name: owner.Name}, job); err != nil {
		return api.Agent{}, unauthenticatedIfGone(err)
	}
	run := &v1alpha1.PipelineRun{}
	if err := a.get(ctx, client.ObjectKey{Namespace: ns, Name: p.Annotations[v1alpha1.AnnotationRunName]}, run); err != nil {
		return api.Agent{}, unauthenticatedIfGone(err)
	}
	return agentOf(types.UID(uid), p, job, run)
}

// pod is the pod from the cache, or from the API server when the cache does not hold
// it yet (it was just created), or holds another pod of that name.
func (a Agents) pod(ctx context.Context, key client.ObjectKey, uid types.UID) (*corev1.Pod, error) {
	p := &corev1.Pod{}
	err := a.Client.Get(ctx, key, p)
	missing := apierrors.IsNotFound(err)
	stale := err == nil && p.UID != uid
	if a.APIReader != nil && (missing || stale) {
		p = &corev1.Pod{}
		err = a.APIReader.Get(ctx, key, p)
	}
	return p, err
}

// get reads obj from the cache, or from the API server when the cache has not seen it.
func (a Agents) get(ctx context.Context, key client.ObjectKey, obj client.Object) error {
	err := a.Client.Get(ctx, key, obj)
	if apierrors.IsNotFound(err) && a.APIReader != nil {
		err = a.APIReader.Get(ctx, key, obj)
	}
	return err
}

// boundPod is the namespace, name and UID of the pod a reviewed token is bound to, when
// the API server authenticated it for the archive's audience.
func boundPod(st authenticationv1.TokenReviewStatus) (ns, pod, uid string, ok bool) {
	if !st.Authenticated || !slices.Contains(st.Audiences, api.AgentAudience) {
		return "", "", "", false
	}
	rest, isSA := strings.CutPrefix(st.User.Username, "system:serviceaccount:")
	ns, _, _ = strings.Cut(rest, ":")
	names, uids := st.User.Extra[extraPodName], st.User.Extra[extraPodUID]
	if !isSA || ns == "" || len(names) != 1 || len(uids) != 1 {
		return "", "", "", false
	}
	return ns, names[0], uids[0], true
}

// agentOf checks the chain pod → Job → run and says which part of the run the pod is:
// its clone, or which step. The pod must be the very one the token is bound to (its
// UID), not ended (a step that ends at once uploads before the kubelet has reported it
// Running, and only a started pod runs code), a clone or step pod of a Job the run
// controls, and label the run's UID; the run must not have finished, and must list the
// step. It may save caches
// only when it is the step the operator adds for that, in a run that may
// (v1alpha1.SavesCaches): the step's name is reserved, so no step of a file has it.
func agentOf(tokenPod types.UID, p *corev1.Pod, job *batchv1.Job, run *v1alpha1.PipelineRun) (api.Agent, error) {
	jobOwner, podOwner := metav1.GetControllerOf(job), metav1.GetControllerOf(p)
	component := p.Labels[v1alpha1.LabelComponent]
	switch {
	case p.UID != tokenPod || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed || !p.DeletionTimestamp.IsZero():
		return api.Agent{}, webview.ErrUnauthenticated
	case component != v1alpha1.ComponentStep && component != v1alpha1.ComponentClone:
		return api.Agent{}, webview.ErrUnauthenticated
	case podOwner == nil || podOwner.UID != job.UID:
		return api.Agent{}, webview.ErrUnauthenticated
	case jobOwner == nil || jobOwner.Kind != "PipelineRun" || jobOwner.UID != run.UID:
		return api.Agent{}, webview.ErrUnauthenticated
	case run.Status.Phase.IsFinished():
		return api.Agent{}, webview.ErrUnauthenticated
	case p.Labels[v1alpha1.LabelRunUID] != string(run.UID) || job.Labels[v1alpha1.LabelComponent] != component ||
		job.Labels[v1alpha1.LabelStepIndex] != p.Labels[v1alpha1.LabelStepIndex]:
		return api.Agent{}, webview.ErrUnauthenticated
	}
	a := api.Agent{Namespace: run.Namespace, Run: run.Name, RunUID: string(run.UID), Component: component, Step: -1,
		RepoURL: run.Spec.RepoURL, Branch: run.Status.Branch}
	if component == v1alpha1.ComponentClone {
		return a, nil
	}
	step, err := strconv.Atoi(p.Labels[v1alpha1.LabelStepIndex])
	if err != nil || step < 0 || step >= len(run.Status.Steps) {
		return api.Agent{}, webview.ErrUnauthenticated
	}
	a.Step, a.StepName = step, run.Status.Steps[step].Name
	a.SavesCaches = a.StepName == pipeline.SaveCachesStep && step == len(run.Status.Steps)-1 && v1alpha1.SavesCaches(run) && a.Branch != ""
	return a, nil
}

func unauthenticatedIfGone(err error) error {
	if client.IgnoreNotFound(err) == nil {
		return webview.ErrUnauthenticated
	}
	return err
}
