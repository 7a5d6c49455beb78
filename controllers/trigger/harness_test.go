package trigger

import (
	"context"
	"net/netip"
	"sort"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers/testenv"
	"github.com/flow-ci/flow-ci/internal/forge"
	"github.com/flow-ci/flow-ci/internal/gitsource"
	"github.com/flow-ci/flow-ci/internal/gittest"
)

var loopback = netip.MustParsePrefix("127.0.0.0/8")

const pipelineFile = "name: app\nsteps:\n- name: test\n  commands: [make test]\n"

// startManager runs the trigger controller, watching only ns, until the test ends or
// stop is called. No PipelineRun controller runs: tests end runs by writing their
// status, as that controller would.
func startManager(t *testing.T, ns string, configure ...func(*Reconciler)) (stop func()) {
	t.Helper()
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:  env.Scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:   cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &Reconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder("flow-ci"),
		Git: GitLister{Options: []gitsource.Option{gitsource.WithAllowedNetworks(loopback)},
			Forge: &forge.Client{Egress: gitsource.Egress{Allowed: []netip.Prefix{loopback}}}},
		SuccessfulHistoryLimit: -1, FailedHistoryLimit: -1,
	}
	for _, c := range configure {
		c(r)
	}
	if err := r.SetupWithManager(mgr, controller.Options{SkipNameValidation: ptr.To(true)}); err != nil {
		t.Fatal(err)
	}
	return testenv.StartManager(t, mgr)
}

// gitRepo serves a repository with a pipeline file on main over loopback.
func gitRepo(t *testing.T) (*gittest.Repo, string) {
	t.Helper()
	repo := gittest.NewRepo(t, map[string]string{"build/flow-ci.yaml": pipelineFile})
	srv := gittest.NewHTTPServer(t, repo.Root, gittest.HTTPOptions{})
	return repo, srv.RepoURL(repo)
}

// push adds a commit on branch and returns its SHA.
func push(t *testing.T, repo *gittest.Repo, branch, content string) string {
	t.Helper()
	return repo.CommitOn(t, branch, map[string]string{"README.md": content})
}

func newTrigger(ns, name, url string, branches ...string) *civ1alpha1.PipelineTrigger {
	return &civ1alpha1.PipelineTrigger{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: civ1alpha1.PipelineTriggerSpec{RepoURL: url, Branches: branches,
			Interval: &metav1.Duration{Duration: time.Hour}}, // polls come from pokes in tests
	}
}

func create(t *testing.T, o client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), o); err != nil {
		t.Fatal(err)
	}
}

func getTrigger(g Gomega, ns, name string) *civ1alpha1.PipelineTrigger {
	tr := &civ1alpha1.PipelineTrigger{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, tr)).To(Succeed())
	return tr
}

// pokeAndWait sets the requestedAt annotation and waits until the poll it asks for was
// handled, which the trigger echoes in status.
func pokeAndWait(t *testing.T, ns, name string) *civ1alpha1.PipelineTrigger {
	t.Helper()
	g := NewWithT(t)
	value := time.Now().Format(time.RFC3339Nano)
	g.Eventually(func() error {
		tr := getTrigger(g, ns, name)
		if tr.Annotations == nil {
			tr.Annotations = map[string]string{}
		}
		tr.Annotations[civ1alpha1.AnnotationRequestedAt] = value
		return env.Client.Update(context.Background(), tr)
	}).WithTimeout(10 * time.Second).Should(Succeed())
	var tr *civ1alpha1.PipelineTrigger
	g.Eventually(func(g Gomega) {
		tr = getTrigger(g, ns, name)
		g.Expect(tr.Status.LastHandledRequestedAt).To(Equal(value))
	}).WithTimeout(30 * time.Second).Should(Succeed())
	return tr
}

// runs lists the runs in ns, sorted by name.
func runs(g Gomega, ns string) []civ1alpha1.PipelineRun {
	list := &civ1alpha1.PipelineRunList{}
	g.Expect(env.Client.List(context.Background(), list, client.InNamespace(ns))).To(Succeed())
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return list.Items
}

// commits lists the commits the runs in ns build, sorted.
func commits(g Gomega, ns string) []string {
	var out []string
	for _, r := range runs(g, ns) {
		out = append(out, r.Spec.Branch+"@"+r.Spec.Revision)
	}
	sort.Strings(out)
	return out
}

// endRun writes a run's final phase as the PipelineRun controller would.
func endRun(t *testing.T, ns, name string, phase civ1alpha1.PipelineRunPhase) {
	endRunAt(t, ns, name, phase, time.Now())
}

// endRunPhase writes a run's phase that is not final.
func endRunPhase(t *testing.T, ns, name string, phase civ1alpha1.PipelineRunPhase) {
	endRunAt(t, ns, name, phase, time.Time{})
}

// endRunAt writes a run's phase and, when it is final, its completion time.
func endRunAt(t *testing.T, ns, name string, phase civ1alpha1.PipelineRunPhase, at time.Time) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		run := &civ1alpha1.PipelineRun{}
		g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, run)).To(Succeed())
		done := metav1.NewTime(at)
		run.Status.Phase = phase
		if phase.IsFinished() {
			run.Status.CompletionTime = &done
		}
		g.Expect(env.Client.Status().Update(context.Background(), run)).To(Succeed())
	}).WithTimeout(10 * time.Second).Should(Succeed())
}

func branchStatus(tr *civ1alpha1.PipelineTrigger, name string) *civ1alpha1.TriggerBranchStatus {
	for i := range tr.Status.Branches {
		if tr.Status.Branches[i].Name == name {
			return &tr.Status.Branches[i]
		}
	}
	return nil
}

func ref(branch, commit string) string { return branch + "@" + commit }

func clientKey(o client.Object) client.ObjectKey { return client.ObjectKeyFromObject(o) }

func ptrTo[T any](v T) *T { return &v }

// waitNotReady waits until the trigger's Ready condition is False with reason.
func waitNotReady(t *testing.T, ns, name, reason string) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		c := apimeta.FindStatusCondition(getTrigger(g, ns, name).Status.Conditions, civ1alpha1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(reason))
	}).WithTimeout(30*time.Second).Should(Succeed(), name)
}
