package trigger

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	clocktesting "k8s.io/utils/clock/testing"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gittest"
	"github.com/flow-ci/flow-ci/internal/render"
)

// TestPushCreatesOneRun: the first poll builds the head, a push creates exactly one run
// pinned to it, and a poll that finds nothing new neither creates a run nor writes the
// trigger.
func TestPushCreatesOneRun(t *testing.T) {
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	repo, url := gitRepo(t)
	c1 := repo.RevParse(t, "main")
	startManager(t, ns)
	tr := newTrigger(ns, "app", url, "main")
	tr.Spec.Template.ConcurrencyPolicy = civ1alpha1.ConcurrencyReplace
	create(t, tr)

	g.Eventually(func(g Gomega) { g.Expect(commits(g, ns)).To(Equal([]string{ref("main", c1)})) }).WithTimeout(30 * time.Second).Should(Succeed())
	run := runs(g, ns)[0]
	g.Expect(run.Name).To(Equal(render.TriggeredRunName(tr, "main", c1)))
	g.Expect(run.Spec.RepoURL).To(Equal(url))
	g.Expect(run.Spec.ConcurrencyPolicy).To(Equal(civ1alpha1.ConcurrencyReplace))
	g.Expect(run.Labels).To(HaveKeyWithValue(civ1alpha1.LabelTriggerUID, string(tr.UID)))
	g.Expect(run.Labels).To(HaveKeyWithValue(civ1alpha1.LabelCommit, c1))
	g.Expect(metav1.IsControlledBy(&run, tr)).To(BeTrue())

	c2 := push(t, repo, "main", "two")
	after := pokeAndWait(t, ns, "app")
	g.Expect(commits(g, ns)).To(ConsistOf(ref("main", c1), ref("main", c2)))
	b := branchStatus(after, "main")
	g.Expect(b.Commit).To(Equal(c2))
	g.Expect(b.LastRun).To(Equal(render.TriggeredRunName(tr, "main", c2)))
	g.Expect(after.Status.LastCommit).To(Equal(c2[:7]))
	g.Expect(apimeta.IsStatusConditionTrue(after.Status.Conditions, civ1alpha1.ConditionReady)).To(BeTrue())

	// Nothing new: the poll runs (its poke is echoed) but nothing else is written.
	again := pokeAndWait(t, ns, "app")
	g.Expect(commits(g, ns)).To(HaveLen(2))
	version := again.ResourceVersion
	// A reconcile without a poke (a run's status changing, not ending) writes nothing.
	endRunPhase(t, ns, run.Name, civ1alpha1.PhaseRunning)
	g.Consistently(func(g Gomega) {
		g.Expect(getTrigger(g, ns, "app").ResourceVersion).To(Equal(version))
	}).WithTimeout(3 * time.Second).Should(Succeed())
}

// TestTwoPushesOneInterval: two pushes between polls build the newest head only; the
// commit in between never gets a run, so with Replace there is nothing to cancel.
func TestTwoPushesOneInterval(t *testing.T) {
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	repo, url := gitRepo(t)
	c1 := repo.RevParse(t, "main")
	startManager(t, ns)
	tr := newTrigger(ns, "app", url, "main")
	tr.Spec.Template.ConcurrencyPolicy = civ1alpha1.ConcurrencyReplace
	create(t, tr)
	g.Eventually(func(g Gomega) { g.Expect(commits(g, ns)).To(HaveLen(1)) }).WithTimeout(30 * time.Second).Should(Succeed())

	push(t, repo, "main", "two")
	c3 := push(t, repo, "main", "three")
	pokeAndWait(t, ns, "app")
	g.Expect(commits(g, ns)).To(ConsistOf(ref("main", c1), ref("main", c3)))
	for _, r := range runs(g, ns) {
		g.Expect(r.Spec.Cancel).To(BeFalse(), "run %s", r.Name)
	}
}

// TestNewBranches: a branch that appears and matches the glob is built with
// onNewBranch Build, only recorded with Skip (then built at its next push); a deleted
// branch is no longer tracked, and one that comes back is new again.
func TestNewBranches(t *testing.T) {
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	repo, url := gitRepo(t)
	c1 := repo.RevParse(t, "main")
	startManager(t, ns)
	build := newTrigger(ns, "build", url, "release/*")
	skip := newTrigger(ns, "skip", url, "release/*")
	skip.Spec.OnNewBranch = civ1alpha1.NewBranchSkip
	create(t, build)
	create(t, skip)
	g.Eventually(func(g Gomega) {
		g.Expect(apimeta.IsStatusConditionTrue(getTrigger(g, ns, "build").Status.Conditions, civ1alpha1.ConditionReady)).To(BeTrue())
		g.Expect(apimeta.IsStatusConditionTrue(getTrigger(g, ns, "skip").Status.Conditions, civ1alpha1.ConditionReady)).To(BeTrue())
	}).WithTimeout(30 * time.Second).Should(Succeed())
	g.Expect(runs(g, ns)).To(BeEmpty(), "main does not match release/*")

	r1 := push(t, repo, "release/1", "r1")
	push(t, repo, "feature/x", "no match")
	pokeAndWait(t, ns, "build")
	skipped := pokeAndWait(t, ns, "skip")
	g.Expect(commits(g, ns)).To(Equal([]string{ref("release/1", r1)}))
	g.Expect(runs(g, ns)[0].Labels[civ1alpha1.LabelTrigger]).To(Equal("build"))
	g.Expect(branchStatus(skipped, "release/1")).To(Equal(&civ1alpha1.TriggerBranchStatus{Name: "release/1", Commit: r1}))

	r1b := push(t, repo, "release/1", "r1b")
	pokeAndWait(t, ns, "skip")
	g.Expect(commits(g, ns)).To(ConsistOf(ref("release/1", r1), ref("release/1", r1b)))

	gittest.Git(t, repo.Path, "update-ref", "-d", "refs/heads/release/1")
	gone := pokeAndWait(t, ns, "build")
	g.Expect(gone.Status.Branches).To(BeEmpty(), "a deleted branch is dropped")
	push(t, repo, "release/1", "back")
	back := repo.RevParse(t, "release/1")
	pokeAndWait(t, ns, "build")
	g.Expect(commits(g, ns)).To(ContainElement(ref("release/1", back)), "a branch that comes back is new again")
	g.Expect(c1).NotTo(BeEmpty())
}

// TestNoDuplicateAfterLostWrite: a run created by a pass whose status write was lost
// (before a restart, or on another replica) is found by name and not created again;
// an object of that name that is not the trigger's is left alone and reported.
func TestNoDuplicateAfterLostWrite(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := env.NewNamespace(t)
	repo, url := gitRepo(t)
	c1 := repo.RevParse(t, "main")
	tr := newTrigger(ns, "app", url, "main")
	tr.Spec.Suspend = true // created with no controller running
	create(t, tr)
	earlier := render.TriggeredRun(tr, render.TriggeredRunName(tr, "main", c1), "main", c1, "")
	create(t, earlier)
	foreign := newTrigger(ns, "other", url, "dev")
	create(t, foreign)
	c2 := push(t, repo, "dev", "dev")
	squatter := &civ1alpha1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: render.TriggeredRunName(foreign, "dev", c2)},
		Spec: civ1alpha1.PipelineRunSpec{RepoURL: url, Branch: "dev", Revision: c2}}
	create(t, squatter)

	startManager(t, ns)
	g.Eventually(func(g Gomega) {
		cur := getTrigger(g, ns, "app")
		cur.Spec.Suspend = false
		g.Expect(env.Client.Update(ctx, cur)).To(Succeed())
	}).WithTimeout(10 * time.Second).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(branchStatus(getTrigger(g, ns, "app"), "main")).NotTo(BeNil())
		g.Expect(branchStatus(getTrigger(g, ns, "app"), "main").LastRun).To(Equal(earlier.Name))
	}).WithTimeout(30 * time.Second).Should(Succeed())
	waitNotReady(t, ns, "other", civ1alpha1.ReasonRunConflict)
	g.Expect(runs(g, ns)).To(HaveLen(2), "the earlier run and the squatter; nothing created twice")
	left := &civ1alpha1.PipelineRun{}
	g.Expect(env.Client.Get(ctx, clientKey(squatter), left)).To(Succeed())
	g.Expect(left.ResourceVersion).To(Equal(squatter.ResourceVersion), "the foreign run is untouched")
	g.Expect(left.OwnerReferences).To(BeEmpty())
}

// TestSuspend: a suspended trigger polls nothing, even when poked; resuming polls.
func TestSuspend(t *testing.T) {
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	repo, url := gitRepo(t)
	startManager(t, ns)
	tr := newTrigger(ns, "app", url, "main")
	tr.Spec.Suspend = true
	create(t, tr)
	waitNotReady(t, ns, "app", civ1alpha1.ReasonSuspended)
	push(t, repo, "main", "two")
	g.Eventually(func() error {
		cur := getTrigger(g, ns, "app")
		cur.Annotations = map[string]string{civ1alpha1.AnnotationRequestedAt: "now"}
		return env.Client.Update(context.Background(), cur)
	}).WithTimeout(10 * time.Second).Should(Succeed())
	g.Consistently(func(g Gomega) { g.Expect(runs(g, ns)).To(BeEmpty()) }).WithTimeout(3 * time.Second).Should(Succeed())

	g.Eventually(func() error {
		cur := getTrigger(g, ns, "app")
		cur.Spec.Suspend = false
		return env.Client.Update(context.Background(), cur)
	}).WithTimeout(10 * time.Second).Should(Succeed())
	g.Eventually(func(g Gomega) { g.Expect(runs(g, ns)).To(HaveLen(1)) }).WithTimeout(30 * time.Second).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(getTrigger(g, ns, "app").Status.LastHandledRequestedAt).To(Equal("now"), "the poke waiting since suspension was answered")
	}).WithTimeout(10 * time.Second).Should(Succeed())
}

// TestRunEndsAndHistory: the trigger records how its runs end, and keeps the history
// limit per branch.
func TestRunEndsAndHistory(t *testing.T) {
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	repo, url := gitRepo(t)
	startManager(t, ns)
	tr := newTrigger(ns, "app", url, "main")
	tr.Spec.SuccessfulHistoryLimit = ptrTo(int32(1))
	create(t, tr)
	g.Eventually(func(g Gomega) { g.Expect(runs(g, ns)).To(HaveLen(1)) }).WithTimeout(30 * time.Second).Should(Succeed())
	first := runs(g, ns)[0].Name
	endRunAt(t, ns, first, civ1alpha1.PhaseSucceeded, time.Now().Add(-time.Hour))
	g.Eventually(func(g Gomega) {
		cur := getTrigger(g, ns, "app")
		g.Expect(branchStatus(cur, "main").LastRunPhase).To(Equal(civ1alpha1.PhaseSucceeded))
		g.Expect(cur.Status.LastRunPhase).To(Equal(civ1alpha1.PhaseSucceeded))
	}).WithTimeout(30 * time.Second).Should(Succeed())

	push(t, repo, "main", "two")
	pokeAndWait(t, ns, "app")
	var second string
	for _, r := range runs(g, ns) {
		if r.Name != first {
			second = r.Name
		}
	}
	g.Expect(second).NotTo(BeEmpty())
	endRun(t, ns, second, civ1alpha1.PhaseSucceeded)
	g.Eventually(func(g Gomega) {
		var names []string
		for _, r := range runs(g, ns) {
			if r.DeletionTimestamp.IsZero() {
				names = append(names, r.Name)
			}
		}
		g.Expect(names).To(Equal([]string{second}), "one succeeded run kept per branch")
	}).WithTimeout(30 * time.Second).Should(Succeed())
}

// TestPollErrors: an unknown repository and a missing Secret are reported on Ready.
func TestPollErrors(t *testing.T) {
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := gitRepo(t)
	startManager(t, ns)
	missing := newTrigger(ns, "missing", url[:len(url)-len("repo.git")]+"nope.git", "main")
	secretless := newTrigger(ns, "secretless", url, "main")
	secretless.Spec.GitSecretRef = &civ1alpha1.SecretReference{Name: "absent"}
	create(t, missing)
	create(t, secretless)
	for name, reason := range map[string]string{"missing": civ1alpha1.ReasonRepositoryNotFound, "secretless": civ1alpha1.ReasonSecretNotFound} {
		waitNotReady(t, ns, name, reason)
	}
	g.Expect(runs(g, ns)).To(BeEmpty())
}

// TestSchedules: with the clock at a slot, the schedule starts one run of the branch's
// head named from the slot; further passes in that minute start nothing; the next
// day's slot starts another, unless onlyIfChanged and the head was built.
func TestSchedules(t *testing.T) {
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	repo, url := gitRepo(t)
	c1 := repo.RevParse(t, "main")
	clk := clocktesting.NewFakePassiveClock(time.Now())
	startManager(t, ns, func(r *Reconciler) { r.Clock = clk })
	nightly := func(name string, onlyIfChanged bool) *civ1alpha1.PipelineTrigger {
		tr := newTrigger(ns, name, url)
		tr.Spec.Schedules = []civ1alpha1.TriggerSchedule{{Name: "nightly", Cron: "0 3 * * *", TimeZone: "Europe/Berlin", Branch: "main", OnlyIfChanged: onlyIfChanged}}
		return tr
	}
	always, changed := nightly("always", false), nightly("changed", true)
	create(t, always)
	create(t, changed)
	berlin, _ := time.LoadLocation("Europe/Berlin")
	day := time.Now().In(berlin).AddDate(0, 0, 1)
	slot := time.Date(day.Year(), day.Month(), day.Day(), 3, 0, 0, 0, berlin)
	clk.SetTime(slot.Add(30 * time.Second))
	pokeAndWait(t, ns, "always")
	pokeAndWait(t, ns, "changed")
	runsOf := func(g Gomega, trigger string) []string {
		var out []string
		for _, r := range runs(g, ns) {
			if r.Labels[civ1alpha1.LabelTrigger] == trigger {
				g.Expect(r.Labels[civ1alpha1.LabelSchedule]).To(Equal("nightly"))
				out = append(out, r.Name)
			}
		}
		return out
	}
	g.Expect(runsOf(g, "always")).To(Equal([]string{render.ScheduledRunName(always, "nightly", slot)}))
	g.Expect(runsOf(g, "changed")).To(HaveLen(1), "the head was never built")
	g.Expect(commits(g, ns)).To(Equal([]string{ref("main", c1), ref("main", c1)}))

	clk.SetTime(slot.Add(50 * time.Second)) // the same minute again: no double fire
	pokeAndWait(t, ns, "always")
	g.Expect(runsOf(g, "always")).To(HaveLen(1))

	next := slot.AddDate(0, 0, 1)
	clk.SetTime(next.Add(10 * time.Second))
	st := pokeAndWait(t, ns, "always").Status.Schedules[0]
	pokeAndWait(t, ns, "changed")
	g.Expect(runsOf(g, "always")).To(ConsistOf(render.ScheduledRunName(always, "nightly", slot), render.ScheduledRunName(always, "nightly", next)))
	g.Expect(st.LastScheduleTime.Time.Equal(next)).To(BeTrue(), "lastScheduleTime %v", st.LastScheduleTime)
	g.Expect(st.NextScheduleTime.Time.Equal(next.AddDate(0, 0, 1))).To(BeTrue(), "nextScheduleTime %v", st.NextScheduleTime)
	g.Expect(runsOf(g, "changed")).To(HaveLen(1), "onlyIfChanged: the head was built by the first slot")
	cur := getTrigger(g, ns, "changed").Status.Schedules[0]
	g.Expect(cur.LastScheduleTime.Time.Equal(next)).To(BeTrue(), "the skipped slot is recorded as handled")

	push(t, repo, "main", "two")
	third := next.AddDate(0, 0, 1)
	clk.SetTime(third.Add(10 * time.Second))
	pokeAndWait(t, ns, "changed")
	g.Expect(runsOf(g, "changed")).To(HaveLen(2), "a new head runs at the next slot")
}
