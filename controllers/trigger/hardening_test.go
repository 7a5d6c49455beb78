package trigger

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/forge"
	"github.com/flow-ci/flow-ci/internal/gitsource"
	"github.com/flow-ci/flow-ci/internal/render"
	"github.com/flow-ci/flow-ci/internal/triggerstate"
)

// TestAdoptsOnlyWhatItWouldCreate: a run with the trigger's name for a head, controlled
// by the trigger, is adopted (and recorded for the reporter) only when it is the run the
// trigger would create; one that builds another pipeline file is a conflict.
func TestAdoptsOnlyWhatItWouldCreate(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := env.NewNamespace(t)
	repo, url := gitRepo(t)
	c1 := repo.RevParse(t, "main")
	c2 := push(t, repo, "dev", "dev")
	tr := newTrigger(ns, "app", url, "main", "dev")
	tr.Spec.Suspend = true
	create(t, tr)
	exact := render.TriggeredRun(tr, render.TriggeredRunName(tr, "main", c1), "main", c1, "")
	create(t, exact)
	tampered := render.TriggeredRun(tr, render.TriggeredRunName(tr, "dev", c2), "dev", c2, "")
	tampered.Spec.PipelinePath = "attacker.yaml"
	create(t, tampered)

	startManager(t, ns)
	g.Eventually(func(g Gomega) {
		cur := getTrigger(g, ns, "app")
		cur.Spec.Suspend = false
		g.Expect(env.Client.Update(ctx, cur)).To(Succeed())
	}).WithTimeout(10 * time.Second).Should(Succeed())
	waitNotReady(t, ns, "app", civ1alpha1.ReasonRunConflict)
	st := getTrigger(g, ns, "app").Status
	g.Expect(triggerstate.Created(&st, string(exact.UID))).To(BeTrue(), "the run it would have created is adopted and recorded")
	g.Expect(triggerstate.Created(&st, string(tampered.UID))).To(BeFalse(), "a run that builds another file is not the trigger's")
	g.Expect(branchStatus(getTrigger(g, ns, "app"), "dev").LastRun).To(BeEmpty())
	g.Expect(runs(g, ns)).To(HaveLen(2))
}

// TestRunBudget: the triggers of a namespace start at most --trigger-runs-per-hour runs
// in an hour; heads beyond it stay unbuilt (and are built once the budget frees), the
// trigger says why, and other namespaces are not affected.
func TestRunBudget(t *testing.T) {
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	repo, url := gitRepo(t)
	for _, b := range []string{"a", "b", "c"} {
		push(t, repo, b, b)
	}
	startManager(t, ns, func(r *Reconciler) { r.RunsPerHour = 2 })
	create(t, newTrigger(ns, "app", url, "a", "b", "c"))
	waitNotReady(t, ns, "app", civ1alpha1.ReasonRunBudgetExhausted)
	g.Expect(runs(g, ns)).To(HaveLen(2))
	built := 0
	for _, b := range getTrigger(g, ns, "app").Status.Branches {
		if b.LastRun != "" {
			built++
		}
	}
	g.Expect(built).To(Equal(2), "the third head keeps its old entry, so a later poll builds it")
	pokeAndWait(t, ns, "app")
	g.Expect(runs(g, ns)).To(HaveLen(2), "still spent")
}

// countingLister counts polls.
type countingLister struct {
	next  Lister
	calls atomic.Int32
}

func (c *countingLister) ListRefs(ctx context.Context, url string, auth *gitsource.Auth) (gitsource.Refs, error) {
	c.calls.Add(1)
	return c.next.ListRefs(ctx, url, auth)
}

func (c *countingLister) ListPulls(ctx context.Context, report *civ1alpha1.CommitStatusReport, url, token string) ([]forge.PullRequest, error) {
	return c.next.ListPulls(ctx, report, url, token)
}

func (c *countingLister) ChangedFilesFromMergeBase(ctx context.Context, url, target, head string, auth *gitsource.Auth) ([]string, bool, error) {
	return c.next.ChangedFilesFromMergeBase(ctx, url, target, head, auth)
}

func (c *countingLister) ChangedFiles(ctx context.Context, url, base, head string, auth *gitsource.Auth) ([]string, bool, error) {
	return c.next.ChangedFiles(ctx, url, base, head, auth)
}

// TestSlotSkippedWhenPollFails: a schedule slot whose poll fails is recorded as handled,
// with an event, so the trigger does not poll a failing server again and again for it.
func TestSlotSkippedWhenPollFails(t *testing.T) {
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := gitRepo(t)
	berlin, _ := time.LoadLocation("Europe/Berlin")
	day := time.Now().In(berlin).AddDate(0, 0, 1)
	slot := time.Date(day.Year(), day.Month(), day.Day(), 3, 0, 0, 0, berlin)
	clk := clocktesting.NewFakePassiveClock(slot.Add(-time.Hour))
	lister := &countingLister{next: GitLister{Options: []gitsource.Option{gitsource.WithAllowedNetworks(loopback)}}}
	startManager(t, ns, func(r *Reconciler) { r.Clock, r.Git = clk, lister })
	tr := newTrigger(ns, "broken", strings.TrimSuffix(url, "repo.git")+"nope.git")
	tr.Spec.Schedules = []civ1alpha1.TriggerSchedule{{Name: "nightly", Cron: "0 3 * * *", TimeZone: "Europe/Berlin", Branch: "main"}}
	create(t, tr)
	waitNotReady(t, ns, "broken", civ1alpha1.ReasonRepositoryNotFound)
	clk.SetTime(slot.Add(30 * time.Second))
	pokeAndWait(t, ns, "broken")
	g.Eventually(func(g Gomega) {
		ss := getTrigger(g, ns, "broken").Status.Schedules
		g.Expect(ss).To(HaveLen(1))
		g.Expect(ss[0].LastScheduleTime).NotTo(BeNil())
		g.Expect(ss[0].LastScheduleTime.Time.Equal(slot)).To(BeTrue(), "the failed slot is handled")
	}).WithTimeout(30 * time.Second).Should(Succeed())
	polls := lister.calls.Load()
	g.Consistently(lister.calls.Load).WithTimeout(3*time.Second).Should(Equal(polls), "no poll storm for a handled slot")
	g.Expect(eventReasons(g, ns, "broken")).To(ContainElement(civ1alpha1.EventSlotSkipped))
	g.Expect(runs(g, ns)).To(BeEmpty())
}

// TestRerun: a rerun request on the trigger (ci.flowci.dev/rerun) makes a run of the
// trigger's own: the same commit, or the branch's latest head, recorded for the
// reporter, once per request; a run that is not the trigger's is refused.
func TestRerun(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := env.NewNamespace(t)
	repo, url := gitRepo(t)
	c1 := repo.RevParse(t, "main")
	startManager(t, ns)
	tr := newTrigger(ns, "app", url, "main")
	create(t, tr)
	first := render.TriggeredRunName(tr, "main", c1)
	g.Eventually(func(g Gomega) { g.Expect(commits(g, ns)).To(Equal([]string{ref("main", c1)})) }).WithTimeout(30 * time.Second).Should(Succeed())
	foreign := &civ1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mine"},
		Spec: civ1alpha1.PipelineRunSpec{RepoURL: url, Branch: "main", Revision: c1}}
	create(t, foreign)

	ask := func(value string) *civ1alpha1.PipelineTrigger { return askRerun(t, ns, "app", value) }
	cur := ask("r1 " + first)
	src := &civ1alpha1.PipelineRun{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: first}, src)).To(Succeed())
	again := &civ1alpha1.PipelineRun{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: render.RerunName(cur, src, "r1", false)}, again)).To(Succeed())
	g.Expect(again.Spec.Revision).To(Equal(c1))
	g.Expect(again.Labels[civ1alpha1.LabelRerunOf]).To(Equal(first))
	g.Expect(metav1.GetControllerOf(again).UID).To(Equal(cur.UID))
	g.Expect(triggerstate.Created(&cur.Status, string(again.UID))).To(BeTrue())

	c2 := push(t, repo, "main", "two")
	pokeAndWait(t, ns, "app")
	n := len(runs(g, ns))
	cur = ask("r2 " + first + " latest")
	latest := &civ1alpha1.PipelineRun{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: render.RerunName(cur, src, "r2", true)}, latest)).To(Succeed())
	g.Expect(latest.Spec.Revision).To(Equal(c2))
	g.Expect(runs(g, ns)).To(HaveLen(n + 1))

	ask("r3 mine")
	ask("r4 nothing-here")
	ask("not a request")
	g.Expect(runs(g, ns)).To(HaveLen(n+1), "refused requests create nothing")
	g.Eventually(func(g Gomega) {
		g.Expect(eventReasons(g, ns, "app")).To(ContainElement(civ1alpha1.EventRerunRefused))
	}).WithTimeout(10 * time.Second).Should(Succeed())
}

func eventReasons(g Gomega, ns, regarding string) []string {
	var out []string
	for _, e := range eventsOf(g, ns, regarding) {
		out = append(out, e.Reason)
	}
	return out
}

// eventsOf are the events of namespace ns about the object named regarding.
func eventsOf(g Gomega, ns, regarding string) []eventsv1.Event {
	list := &eventsv1.EventList{}
	g.Expect(env.Client.List(context.Background(), list, client.InNamespace(ns))).To(Succeed())
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Name == regarding {
			out = append(out, e)
		}
	}
	return out
}
