package commitstatus

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers/sources"
	"github.com/flow-ci/flow-ci/controllers/testenv"
	"github.com/flow-ci/flow-ci/internal/forge"
	"github.com/flow-ci/flow-ci/internal/forgetest"
	"github.com/flow-ci/flow-ci/internal/gitsource"
	"github.com/flow-ci/flow-ci/internal/gittest"
	"github.com/flow-ci/flow-ci/internal/render"
	"github.com/flow-ci/flow-ci/internal/triggerstate"
)

func startReporter(t *testing.T, ns string) (stop func()) {
	t.Helper()
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{Scheme: env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		Cache: cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}}})
	if err != nil {
		t.Fatal(err)
	}
	r := &Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder("flow-ci"),
		Forge: &forge.Client{Egress: gitsource.Egress{Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}}, Concurrency: 2}
	if err := r.SetupWithManager(mgr, controller.Options{SkipNameValidation: ptr.To(true)}); err != nil {
		t.Fatal(err)
	}
	return testenv.StartManager(t, mgr)
}

// TestCommitStatus posts to a real Gitea: pending when a triggered run starts, then
// success, failure or error (Cancelled); each state once, also across a restart; a
// refused token is recorded and reported in an event, never repeated and never shown.
func TestCommitStatus(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := env.NewNamespace(t)
	gitea := forgetest.StartGitea(t, "127.0.0.1")
	repoURL := gitea.CreateRepo(t, "app")
	local := gittest.NewRepo(t, map[string]string{"build/flow-ci.yaml": "name: app\nsteps:\n- name: t\n  commands: [true]\n"})
	c1 := local.RevParse(t, "main")
	c2 := local.Commit(t, map[string]string{"a": "2"})
	c3 := local.Commit(t, map[string]string{"a": "3"})
	gitea.Push(t, local.Path, "app", "main")

	secret := func(name, token string) {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: map[string]string{sources.TokenKey: token}}
		g.Expect(env.Client.Create(ctx, s)).To(Succeed())
	}
	secret("forge", gitea.Token)
	secret("bad", "not-the-token-SECRET")
	trigger := func(name, secretName string) *civ1alpha1.PipelineTrigger {
		tr := &civ1alpha1.PipelineTrigger{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: civ1alpha1.PipelineTriggerSpec{
			RepoURL: repoURL, Branches: []string{"main"}, Suspend: true,
			Report: &civ1alpha1.CommitStatusReport{Provider: "gitea", URL: gitea.URL, SecretRef: civ1alpha1.SecretReference{Name: secretName},
				TargetURL: "https://ci.example/{namespace}/{name}"},
		}}
		g.Expect(env.Client.Create(ctx, tr)).To(Succeed())
		return tr
	}
	good, bad := trigger("app", "forge"), trigger("badtoken", "bad")
	run := func(tr *civ1alpha1.PipelineTrigger, commit string) *civ1alpha1.PipelineRun {
		return createTriggered(t, tr, commit)
	}
	setPhase := func(r *civ1alpha1.PipelineRun, phase civ1alpha1.PipelineRunPhase) {
		g.Eventually(func(g Gomega) {
			cur := &civ1alpha1.PipelineRun{}
			g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(r), cur)).To(Succeed())
			cur.Status.Phase, cur.Status.Commit, cur.Status.PipelineName = phase, r.Spec.Revision, "app"
			if phase.IsFinished() {
				now := metav1.Now()
				cur.Status.CompletionTime = &now
			}
			g.Expect(env.Client.Status().Update(ctx, cur)).To(Succeed())
		}).WithTimeout(10 * time.Second).Should(Succeed())
	}
	states := func(g Gomega, commit string) []string {
		var out []string
		for _, s := range gitea.Statuses(t, "app", commit) {
			g.Expect(s.Context).To(Equal("flow-ci/app"))
			out = append(out, s.State)
		}
		return out
	}

	stop := startReporter(t, ns)
	ok, failed, cancelled := run(good, c1), run(good, c2), run(good, c3)
	// Queued is pending at once: a run waiting for a slot shows on the commit.
	setPhase(ok, civ1alpha1.PhaseQueued)
	g.Eventually(func(g Gomega) { g.Expect(states(g, c1)).To(Equal([]string{"pending"})) }).WithTimeout(30 * time.Second).Should(Succeed())
	for _, r := range []*civ1alpha1.PipelineRun{ok, failed, cancelled} {
		setPhase(r, civ1alpha1.PhaseRunning)
	}
	g.Eventually(func(g Gomega) { g.Expect(states(g, c2)).To(Equal([]string{"pending"})) }).WithTimeout(30 * time.Second).Should(Succeed())
	g.Consistently(func(g Gomega) { g.Expect(states(g, c1)).To(Equal([]string{"pending"})) }).WithTimeout(2*time.Second).Should(Succeed(),
		"Gitea has no running state: Queued to Running posts nothing new")
	setPhase(ok, civ1alpha1.PhaseSucceeded)
	setPhase(failed, civ1alpha1.PhaseFailed)
	setPhase(cancelled, civ1alpha1.PhaseCancelled)
	for commit, want := range map[string]string{c1: "success", c2: "failure", c3: "error"} {
		g.Eventually(func(g Gomega) { g.Expect(states(g, commit)).To(Equal([]string{"pending", want})) }).WithTimeout(30*time.Second).Should(Succeed(), want)
	}
	all := gitea.Statuses(t, "app", c1)
	latest := all[len(all)-1]
	g.Expect(latest.Description).To(ContainSubstring(ok.Name))
	g.Expect(latest.TargetURL).To(Equal("https://ci.example/" + ns + "/" + ok.Name))
	g.Eventually(func(g Gomega) {
		cur := &civ1alpha1.PipelineRun{}
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(ok), cur)).To(Succeed())
		g.Expect(cur.Annotations[civ1alpha1.AnnotationCommitStatus]).To(MatchJSON(`{"context":"flow-ci/app","state":"success"}`))
	}).WithTimeout(10 * time.Second).Should(Succeed())

	// A restart reconciles every run again: nothing is posted twice.
	stop()
	startReporter(t, ns)
	g.Consistently(func(g Gomega) {
		g.Expect(states(g, c1)).To(HaveLen(2))
		g.Expect(states(g, c2)).To(HaveLen(2))
	}).WithTimeout(3 * time.Second).Should(Succeed())

	refused := run(bad, c1)
	setPhase(refused, civ1alpha1.PhaseRunning)
	var rec Recorded
	g.Eventually(func(g Gomega) {
		cur := &civ1alpha1.PipelineRun{}
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(refused), cur)).To(Succeed())
		g.Expect(json.Unmarshal([]byte(cur.Annotations[civ1alpha1.AnnotationCommitStatus]), &rec)).To(Succeed())
	}).WithTimeout(30 * time.Second).Should(Succeed())
	g.Expect(rec.Error).To(ContainSubstring("HTTP 401"))
	g.Eventually(func(g Gomega) {
		list := &eventsv1.EventList{}
		g.Expect(env.Client.List(ctx, list, client.InNamespace(ns))).To(Succeed())
		var notes []string
		for _, e := range list.Items {
			if e.Reason == civ1alpha1.EventCommitStatusFailed && e.Regarding.UID == types.UID(refused.UID) {
				notes = append(notes, e.Note)
			}
		}
		g.Expect(notes).To(HaveLen(1))
		g.Expect(strings.Join(notes, "")).NotTo(ContainSubstring("SECRET"))
	}).WithTimeout(30 * time.Second).Should(Succeed())
	g.Expect(rec.Error).NotTo(ContainSubstring("SECRET"))
	g.Expect(states(g, c1)).To(HaveLen(2), "the refused post added nothing")
}

// TestStateToReport: every phase is mapped on purpose; nothing is reported before the
// operator saw a run, a queued or pending run is pending, and nothing falls back to failure.
func TestStateToReport(t *testing.T) {
	want := map[civ1alpha1.PipelineRunPhase]forge.State{
		civ1alpha1.PhaseQueued: forge.StatePending, civ1alpha1.PhasePending: forge.StatePending,
		civ1alpha1.PhaseRunning: forge.StateRunning, civ1alpha1.PhaseSucceeded: forge.StateSuccess,
		civ1alpha1.PhaseFailed: forge.StateFailure, civ1alpha1.PhaseCancelled: forge.StateError,
	}
	for _, p := range []civ1alpha1.PipelineRunPhase{"", civ1alpha1.PhaseQueued, civ1alpha1.PhasePending,
		civ1alpha1.PhaseRunning, civ1alpha1.PhaseSucceeded, civ1alpha1.PhaseFailed, civ1alpha1.PhaseCancelled, "Unknown"} {
		got, ok := StateToReport(p)
		if w, reported := want[p]; got != w || ok != reported {
			t.Errorf("StateToReport(%q) = %q, %v; want %q, %v", p, got, ok, w, reported)
		}
	}
}

// createTriggered creates the run tr would create for commit of main and records it in
// tr's status.runs, as the trigger controller does.
func createTriggered(t *testing.T, tr *civ1alpha1.PipelineTrigger, commit string) *civ1alpha1.PipelineRun {
	t.Helper()
	g := NewWithT(t)
	r := render.TriggeredRun(tr, render.TriggeredRunName(tr, "main", commit), "main", commit, "")
	g.Expect(env.Client.Create(context.Background(), r)).To(Succeed())
	recordRun(t, tr, r)
	return r
}

func recordRun(t *testing.T, tr *civ1alpha1.PipelineTrigger, r *civ1alpha1.PipelineRun) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		cur := &civ1alpha1.PipelineTrigger{}
		g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(tr), cur)).To(Succeed())
		triggerstate.RecordCreated(&cur.Status, r.Name, string(r.UID))
		g.Expect(env.Client.Status().Update(context.Background(), cur)).To(Succeed())
	}).WithTimeout(10 * time.Second).Should(Succeed())
}

// TestForgedRunsAreNotReported: a run that names a reporting trigger as its owner
// but that the trigger did not create posts nothing with the trigger's token, whatever
// repository and commit it names; neither does a recorded run whose repository is not
// the trigger's. (Admission refuses such runs too: config/policy; this is the reporter's
// own check, for clusters without the policy.)
func TestForgedRunsAreNotReported(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := env.NewNamespace(t)
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		posts.Add(1)
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(srv.Close)
	g.Expect(env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "forge"},
		StringData: map[string]string{sources.TokenKey: "tok"}})).To(Succeed())
	tr := &civ1alpha1.PipelineTrigger{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}, Spec: civ1alpha1.PipelineTriggerSpec{
		RepoURL: "https://git.example/org/app.git", Branches: []string{"main"}, Suspend: true,
		Report: &civ1alpha1.CommitStatusReport{Provider: "gitea", URL: srv.URL, SecretRef: civ1alpha1.SecretReference{Name: "forge"}},
	}}
	g.Expect(env.Client.Create(ctx, tr)).To(Succeed())
	commit := strings.Repeat("a", 40)

	forged := render.TriggeredRun(tr, "forged", "main", strings.Repeat("b", 40), "")
	forged.Spec.RepoURL = "https://git.example/org/other.git"
	g.Expect(env.Client.Create(ctx, forged)).To(Succeed())
	unrecorded := render.TriggeredRun(tr, "unrecorded", "main", commit, "")
	g.Expect(env.Client.Create(ctx, unrecorded)).To(Succeed())
	otherRepo := render.TriggeredRun(tr, "other-repo", "main", commit, "")
	otherRepo.Spec.RepoURL = "https://git.example/org/other.git"
	g.Expect(env.Client.Create(ctx, otherRepo)).To(Succeed())
	recordRun(t, tr, otherRepo)
	genuine := createTriggered(t, tr, commit)

	startReporter(t, ns)
	for _, r := range []*civ1alpha1.PipelineRun{forged, unrecorded, otherRepo, genuine} {
		g.Eventually(func(g Gomega) {
			cur := &civ1alpha1.PipelineRun{}
			g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(r), cur)).To(Succeed())
			cur.Status.Phase = civ1alpha1.PhaseRunning
			g.Expect(env.Client.Status().Update(ctx, cur)).To(Succeed())
		}).WithTimeout(10 * time.Second).Should(Succeed())
	}
	g.Eventually(posts.Load).WithTimeout(30*time.Second).Should(BeEquivalentTo(1), "the genuine run posts")
	g.Consistently(posts.Load).WithTimeout(3*time.Second).Should(BeEquivalentTo(1), "the others post nothing")
	for _, r := range []*civ1alpha1.PipelineRun{forged, unrecorded, otherRepo} {
		cur := &civ1alpha1.PipelineRun{}
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(r), cur)).To(Succeed())
		g.Expect(cur.Annotations).NotTo(HaveKey(civ1alpha1.AnnotationCommitStatus), r.Name)
	}
}
