package pipelinerun

import (
	"context"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
)

// statusConflicts counts the status writes the API server refused with 409.
type statusConflicts struct {
	next http.RoundTripper
	n    atomic.Int64
}

func (c *statusConflicts) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusConflict && strings.HasSuffix(req.URL.Path, "/status") {
		c.n.Add(1)
	}
	return resp, err
}

func countEvents(t *testing.T, ns, reason string) int {
	n := 0
	for _, r := range eventReasons(t, ns) {
		if strings.HasSuffix(r, "/"+reason) {
			n++
		}
	}
	return n
}

// TestFirstPassWritesStatus: the first pass of a new run writes its status. No write in
// the pass invalidates the pass's own status patch, so no status write is refused, the
// run starts once, and its startTime stays what the first pass wrote.
func TestFirstPassWritesStatus(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, threeSteps)
	conflicts := &statusConflicts{}
	mcfg := rest.CopyConfig(env.Config)
	mcfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { conflicts.next = rt; return conflicts })
	startManagerAs(t, ns, mcfg, func(r *Reconciler) { r.StepEvents = true }) // one Started event: the run started once
	createRun(t, newRunObject(ns, "first", url))

	var started *metav1.Time
	g.Eventually(func(g Gomega) {
		run := getRun(g, ns, "first")
		g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseRunning))
		started = run.Status.StartTime
	}).Should(Succeed())
	g.Expect(started).NotTo(BeNil())
	completeJob(t, waitJob(t, ns, "first-clone"), "node-a")
	run := pinnedRun(t, ns, "first")
	waitJob(t, ns, stepJobName(run, 0))
	g.Eventually(func(g Gomega) {
		g.Expect(getRun(g, ns, "first").Status.Steps[0].Phase).To(Equal(civ1alpha1.StepRunning))
	}).Should(Succeed())
	g.Expect(getRun(g, ns, "first").Status.StartTime).To(Equal(started), "the next passes keep the startTime")
	g.Expect(getRun(g, ns, "first").Labels).To(BeEmpty(), "no label patch moves the run's resourceVersion mid-pass")
	g.Consistently(func() int { return countEvents(t, ns, civ1alpha1.EventStarted) }).
		WithTimeout(time.Second).Should(Equal(1), "one Started event")
	g.Expect(conflicts.n.Load()).To(BeZero(), "status writes refused with 409")
}

// TestFinalConditionCarriesGeneration: the terminal Succeeded condition records the
// generation it was computed for, like every other condition write.
func TestFinalConditionCarriesGeneration(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, oneStep)
	startManager(t, ns)
	startFirstStep(t, ns, "gen", url, nil)
	// A TTL set mid-run changes the spec, so the run's generation moves to 2.
	run := getRun(g, ns, "gen")
	patch := client.MergeFrom(run.DeepCopy())
	run.Spec.TTLSecondsAfterFinished = ptr.To[int32](3600)
	g.Expect(env.Client.Patch(context.Background(), run, patch)).To(Succeed())
	g.Expect(run.Generation).To(BeEquivalentTo(2))
	completeRun(t, ns, "gen")

	run = getRun(g, ns, "gen")
	c := apimeta.FindStatusCondition(run.Status.Conditions, civ1alpha1.ConditionSucceeded)
	g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(c.ObservedGeneration).To(Equal(run.Generation))
	g.Expect(run.Status.ObservedGeneration).To(Equal(run.Generation))
}

// TestNoEventWithoutStatus runs the manager as a user who may do everything the operator
// may, except write status: each pass creates children but its status patch is refused,
// and no event may describe a change that was never saved.
func TestNoEventWithoutStatus(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, oneStep)
	user := userWithoutStatusWrite(t)
	startManagerAs(t, ns, user)
	createRun(t, newRunObject(ns, "unsaved", url))

	waitJob(t, ns, "unsaved-clone") // the pass went as far as starting the run
	g.Consistently(func(g Gomega) {
		g.Expect(eventReasons(t, ns)).To(BeEmpty())
		g.Expect(getRun(g, ns, "unsaved").Status.Phase).To(BeEmpty())
	}).WithTimeout(3 * time.Second).Should(Succeed())
}

// userWithoutStatusWrite is an envtest user bound to the operator's ClusterRole from
// config/rbac, minus pipelineruns/status.
func userWithoutStatusWrite(t *testing.T) *rest.Config {
	t.Helper()
	raw, err := os.ReadFile("../../config/rbac/role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(raw, role); err != nil {
		t.Fatal(err)
	}
	name := "no-status-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	role.ObjectMeta = metav1.ObjectMeta{Name: name}
	var rules []rbacv1.PolicyRule
	for _, rule := range role.Rules {
		var res []string
		for _, r := range rule.Resources {
			if r != "pipelineruns/status" {
				res = append(res, r)
			}
		}
		if len(res) > 0 {
			rule.Resources = res
			rules = append(rules, rule)
		}
	}
	role.Rules = rules
	ctx := context.Background()
	if err := env.Client.Create(ctx, role); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}},
	}
	if err := env.Client.Create(ctx, binding); err != nil {
		t.Fatal(err)
	}
	u, err := env.AddUser(envtest.User{Name: name}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return u.Config()
}
