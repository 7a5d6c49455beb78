package pipelinerun

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers/sources"
	"github.com/flow-ci/flow-ci/internal/gittest"
	"github.com/flow-ci/flow-ci/internal/jobtest"
)

// TestDeadlinesBeforeTheDefinition: a run that cannot get its definition ends instead
// of staying Pending for ever: at the pending timeout with what it waited for, or at
// spec.timeout, whichever comes first.
func TestDeadlinesBeforeTheDefinition(t *testing.T) {
	t.Parallel()
	_, url := serveRepo(t, oneStep)
	silent := "http://" + gittest.NewSilentServer(t) + "/repo.git"
	cases := []struct {
		name, url, reason, message string
		secret                     bool
		timeout, pending           time.Duration
	}{
		{"secret never appears", url, civ1alpha1.ReasonSecretNotFound, `git secret "creds" not found`, true, time.Hour, 3 * time.Second},
		{"server never answers, pending timeout", silent, civ1alpha1.ReasonSourceUnavailable, "gave up after 3s", false, time.Hour, 3 * time.Second},
		{"server never answers, run timeout", silent, civ1alpha1.ReasonTimedOut, "exceeded its timeout of 4s", false, 4 * time.Second, time.Hour},
		{"secret never appears, run timeout", url, civ1alpha1.ReasonTimedOut, "exceeded its timeout of 3s", true, 3 * time.Second, time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			ns := env.NewNamespace(t)
			startManager(t, ns, func(r *Reconciler) { r.Lifecycle.PendingTimeout = tc.pending })
			run := newRunObject(ns, "stuck", tc.url)
			run.Spec.Timeout = &metav1.Duration{Duration: tc.timeout}
			if tc.secret {
				run.Spec.GitSecretRef = &civ1alpha1.SecretReference{Name: "creds"}
			}
			createRun(t, run)
			run = waitFinished(t, ns, "stuck")
			g.Expect(succeededCond(run).Reason).To(Equal(tc.reason))
			g.Expect(succeededCond(run).Message).To(ContainSubstring(tc.message))
			g.Expect(jobsOf(g, ns)).To(BeEmpty())
		})
	}
}

// TestDeniedAddresses: the operator reaches only allowed addresses: an IP literal is
// refused before any dial, and a name that resolves to a denied address at dial time,
// so the server never sees a request.
func TestDeniedAddresses(t *testing.T) {
	t.Parallel()
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests.Add(1) }))
	t.Cleanup(srv.Close)
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	cases := map[string]string{
		"metadata":                  "http://169.254.169.254/latest/meta-data/x.git",
		"ipv4-compatible":           "http://[::169.254.169.254]/x.git",
		"a name resolving to local": "http://localhost:" + port + "/repo.git",
	}
	for name, url := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			ns := env.NewNamespace(t)
			// The default policy: no --git-allowed-networks.
			startManager(t, ns, func(r *Reconciler) { r.Source, r.AllowedNetworks = GitSource{}, nil })
			createRun(t, newRunObject(ns, "denied", url))
			run := waitFinished(t, ns, "denied")
			g.Expect(succeededCond(run).Reason).To(Equal(civ1alpha1.ReasonAddressNotAllowed))
		})
	}
	t.Cleanup(func() {
		if n := requests.Load(); n != 0 {
			t.Errorf("the local server got %d requests", n)
		}
	})
}

// TestForgedChildren: anyone who may create objects in the namespace can copy a run's
// labels and even its owner reference. A forged pod does not move the pinned node or set
// a step's exit code, and a forged Job with the clone's name is not adopted.
func TestForgedChildren(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, oneStep)
	startManager(t, ns)
	createRun(t, newRunObject(ns, "victim", url))
	clone := waitJob(t, ns, "victim-clone")
	forge := func(from *batchv1.Job, node string, exit int32) {
		pod := jobtest.PodFor(from)
		pod.Name, pod.OwnerReferences, pod.Spec.NodeName = from.Name+"-forged", nil, node
		g.Expect(env.Client.Create(context.Background(), pod)).To(Succeed())
		pod.Status = corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{Name: pod.Spec.Containers[0].Name,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: exit, Message: "forged"}}}}}
		g.Expect(env.Client.Status().Update(context.Background(), pod)).To(Succeed())
	}
	forge(clone, "evil-node", 0)
	completeJob(t, clone, "node-a")
	run := pinnedRun(t, ns, "victim")
	step := waitJob(t, ns, stepJobName(run, 0))
	g.Expect(step.Spec.Template.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchFields[0].Values).
		To(Equal([]string{"node-a"}), "pinned to the real clone pod's node")
	forge(step, "node-a", 42)
	completeJob(t, step, "node-a")
	run = waitFinished(t, ns, "victim")
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded))
	g.Expect(run.Status.Steps[0].ExitCode).To(HaveValue(BeZero()))

	// A Job that claims the clone's name and the run as its owner, but is not the
	// clone the run would create.
	ns2 := env.NewNamespace(t)
	early := newRunObject(ns2, "early", url)
	createRun(t, early)
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns2, Name: "early-clone",
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(early, civ1alpha1.GroupVersion.WithKind("PipelineRun"))}},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "clone", Image: "evil:1", Command: []string{"sh", "-c", "steal"}}}}}}}
	g.Expect(env.Client.Create(context.Background(), job)).To(Succeed())
	startManager(t, ns2)
	run = waitFinished(t, ns2, "early")
	g.Expect(succeededCond(run).Reason).To(Equal(civ1alpha1.ReasonChildConflict))
	g.Expect(succeededCond(run).Message).To(ContainSubstring("is not the one it would create"))
}

// TestSecretAllowList: a Secret's owner can name the repositories it may be sent to.
func TestSecretAllowList(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, oneStep)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "creds",
		Annotations: map[string]string{civ1alpha1.AnnotationAllowedRepositories: "github.com/org/*, git.example.com/team/app"}},
		Data: map[string][]byte{"bearerToken": []byte("tok-secret-123")}}
	g.Expect(env.Client.Create(context.Background(), secret)).To(Succeed())
	startManager(t, ns)
	run := newRunObject(ns, "borrow", url)
	run.Spec.GitSecretRef = &civ1alpha1.SecretReference{Name: "creds"}
	createRun(t, run)
	run = waitFinished(t, ns, "borrow")
	g.Expect(succeededCond(run).Reason).To(Equal(civ1alpha1.ReasonAuthenticationFailed))
	g.Expect(succeededCond(run).Message).To(ContainSubstring("may not be used for"))
	raw, _ := json.Marshal(run.Status)
	g.Expect(string(raw)).NotTo(ContainSubstring("tok-secret-123"))
	g.Expect(sources.Allowed("github.com/org/*", "https://github.com/org/app.git")).To(BeTrue())
	g.Expect(sources.Allowed("github.com/org/*", "git@github.com:org/app.git")).To(BeTrue())
	g.Expect(sources.Allowed("github.com/org/*", "https://github.com/org/app/sub.git")).To(BeFalse())
	g.Expect(sources.Allowed("github.com/org/*", "https://github.com/other/app.git")).To(BeFalse())
}

// TestHostileDefinitions: a pipeline file whose script would render a Job too large for
// the API server fails the run at render time with the reason, instead of hanging it.
func TestHostileDefinitions(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	var b strings.Builder
	b.WriteString("name: quotes\nsteps:\n- name: q\n  commands:\n")
	for range 4 {
		b.WriteString("  - \"" + strings.Repeat("'", 60<<10) + "\"\n")
	}
	_, url := serveRepo(t, b.String())
	startManager(t, ns)
	createRun(t, newRunObject(ns, "quotes", url))
	completeJob(t, waitJob(t, ns, "quotes-clone"), "node-a")
	run := waitFinished(t, ns, "quotes")
	g.Expect(succeededCond(run).Reason).To(Equal(civ1alpha1.ReasonInvalidDefinition))
	g.Expect(succeededCond(run).Message).To(ContainSubstring("its script is"))
}

// TestDetachedRevision: a revision that is not on its branch is built as detached.
func TestDetachedRevision(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	repo, url := serveRepo(t, oneStep)
	repo.SetConfig(t, "uploadpack.allowFilter", "true")
	onMain := repo.RevParse(t, "main")
	repo.Commit(t, map[string]string{"README.md": "newer\n"})
	side := repo.CommitOn(t, "side", map[string]string{"build/flow-ci.yaml": oneStep})
	startManager(t, ns)
	for name, rev := range map[string]string{"on-main": onMain, "side": side} {
		run := newRunObject(ns, name, url)
		run.Spec.Revision = rev
		createRun(t, run)
	}
	g.Eventually(func(g Gomega) {
		on, off := getRun(g, ns, "on-main"), getRun(g, ns, "side")
		g.Expect(on.Status.Commit).To(Equal(onMain))
		g.Expect(on.Status.Branch).To(Equal("main"))
		g.Expect(on.Status.Detached).To(BeFalse())
		g.Expect(off.Status.Commit).To(Equal(side))
		g.Expect(off.Status.Branch).To(BeEmpty())
		g.Expect(off.Status.Detached).To(BeTrue())
	}).WithTimeout(20 * time.Second).Should(Succeed())
	args := waitJob(t, ns, "side-clone").Spec.Template.Spec.Containers[0].Args
	g.Expect(strings.Join(args, " ")).To(ContainSubstring("--branch  --commit " + side))
}

// TestWorkspaceBounds: a run may not ask for a larger workspace, or keep a failed one
// longer, than the operator allows; it fails with InvalidSpec before any child exists.
func TestWorkspaceBounds(t *testing.T) {
	t.Parallel()
	_, url := serveRepo(t, oneStep)
	for _, tc := range []struct {
		name, message string
		mutate        func(*civ1alpha1.WorkspaceSpec)
	}{
		{"size", "spec.workspace.size 200Gi is more than the operator allows (--max-workspace-size 100Gi)",
			func(w *civ1alpha1.WorkspaceSpec) { q := resource.MustParse("200Gi"); w.Size = &q }},
		{"retainOnFailure", "spec.workspace.retainOnFailure 1000h0m0s is longer than the operator allows (--max-retain-on-failure 72h0m0s)",
			func(w *civ1alpha1.WorkspaceSpec) { w.RetainOnFailure = &metav1.Duration{Duration: 1000 * time.Hour} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			ns := env.NewNamespace(t)
			startManager(t, ns, func(r *Reconciler) {
				r.Lifecycle.MaxWorkspaceSize, r.Lifecycle.MaxRetainOnFailure = resource.MustParse("100Gi"), 72*time.Hour
			})
			run := newRunObject(ns, "big", url)
			tc.mutate(&run.Spec.Workspace)
			createRun(t, run)
			run = waitFinished(t, ns, "big")
			g.Expect(succeededCond(run).Reason).To(Equal(civ1alpha1.ReasonInvalidSpec))
			g.Expect(succeededCond(run).Message).To(ContainSubstring(tc.message))
			g.Expect(jobsOf(g, ns)).To(BeEmpty())
		})
	}
}

// TestQuotaRefusalEndsTheRun: a namespace whose quota refuses the workspace fails the
// run with ChildRejected and the reason, at once, instead of a retry until a timeout.
func TestQuotaRefusalEndsTheRun(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	_, url := serveRepo(t, oneStep)
	ns := env.NewNamespace(t)
	quota := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "no-volumes"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePersistentVolumeClaims: resource.MustParse("0")}}}
	g.Expect(env.Client.Create(context.Background(), quota)).To(Succeed())
	// envtest runs no quota controller: write the usage it would have computed.
	quota.Status = corev1.ResourceQuotaStatus{Hard: quota.Spec.Hard, Used: corev1.ResourceList{corev1.ResourcePersistentVolumeClaims: resource.MustParse("0")}}
	g.Expect(env.Client.Status().Update(context.Background(), quota)).To(Succeed())
	startManager(t, ns)
	createRun(t, newRunObject(ns, "quota", url))
	run := waitFinished(t, ns, "quota")
	g.Expect(succeededCond(run).Reason).To(Equal(civ1alpha1.ReasonChildRejected))
	g.Expect(succeededCond(run).Message).To(ContainSubstring("exceeded quota"))
}

// TestStarvingTenant: 40 runs of one namespace at a server that accepts and never
// answers hold their namespace's share of the fetch pool only; another namespace's run
// gets its clone Job at once, and the starving runs' pending timeout does not count the
// time they waited for a slot.
func TestStarvingTenant(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	_, url := serveRepo(t, oneStep)
	silent := "http://" + gittest.NewSilentServer(t) + "/repo.git"
	greedy, other := env.NewNamespace(t), env.NewNamespace(t)
	startManager(t, greedy+","+other, func(r *Reconciler) { r.Lifecycle.PendingTimeout = 6 * time.Second })
	for i := range 40 {
		createRun(t, newRunObject(greedy, fmt.Sprintf("starve-%d", i), silent))
	}
	time.Sleep(time.Second) // their fetches hold the greedy namespace's share
	start := time.Now()
	createRun(t, newRunObject(other, "fine", url))
	waitJob(t, other, "fine-clone")
	g.Expect(time.Since(start)).To(BeNumerically("<", 15*time.Second), "the other tenant's clone waited behind the starving one")
	// The first starving runs give up after their pending timeout; those that waited
	// behind them do not, because their timeout counts their own git calls, not the
	// time they queued (6 s for each pair before them). Counted a few seconds after the
	// first gave up, when a timeout that counted the queue would have ended them all.
	phases := func(g Gomega) map[civ1alpha1.PipelineRunPhase]int {
		list := &civ1alpha1.PipelineRunList{}
		g.Expect(env.Client.List(context.Background(), list, client.InNamespace(greedy))).To(Succeed())
		out := map[civ1alpha1.PipelineRunPhase]int{}
		for _, r := range list.Items {
			out[r.Status.Phase]++
		}
		return out
	}
	g.Eventually(func(g Gomega) { g.Expect(phases(g)[civ1alpha1.PhaseFailed]).To(BeNumerically(">", 0)) }).
		WithTimeout(60 * time.Second).Should(Succeed())
	time.Sleep(3 * time.Second)
	g.Expect(phases(g)[civ1alpha1.PhasePending]).To(BeNumerically(">=", 30), "runs that only queued timed out")
}
