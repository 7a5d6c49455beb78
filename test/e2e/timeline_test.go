//go:build e2e

package e2e

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	. "github.com/onsi/gomega"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/gittest"
)

// timelinePipeline: after a, a fast and a slow branch join; slow fails its first
// attempt (a file in the workspace remembers it) and succeeds on its retry.
const timelinePipeline = `name: Timeline
steps:
- name: a
  commands: [echo a]
- name: fast
  dependsOn: [a]
  commands: [echo fast]
- name: slow
  dependsOn: [a]
  retries: 1
  commands:
  - if [ ! -f .failed-once ]; then touch .failed-once; echo failing once; exit 1; fi
  - sleep 6
- name: join
  dependsOn: [fast, slow]
  commands: [echo join]
`

// TestTimelineOnTheCluster: each step's phases are recorded from the real kubelet's
// times, the critical path goes through the slow branch, the retried step is flaky in
// status, in flowci describe and in the web view, whose timeline Chromium draws with a
// bar per step and the critical path marked.
func TestTimelineOnTheCluster(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := newNamespace(t)
	repo, srv := gitServer(t, map[string]string{"build/flow-ci.yaml": timelinePipeline}, gittest.HTTPOptions{})
	createRun(t, ns, "timed", srv.RepoURL(repo), nil)
	run := waitFinished(t, ns, "timed", 5*time.Minute)
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded), toJSON(run.Status))

	tm := run.Status.Timing
	g.Expect(tm).NotTo(BeNil())
	g.Expect(tm.CloneStartTime).NotTo(BeNil())
	g.Expect(tm.CloneCompletionTime).NotTo(BeNil())
	g.Expect(tm.CriticalPath).To(Equal([]string{"a", "slow", "join"}), toJSON(run.Status))
	for _, s := range run.Status.Steps {
		st := s.Timing
		g.Expect(st).NotTo(BeNil(), s.Name)
		for what, at := range map[string]any{"ready": st.ReadyTime, "job": st.JobCreationTime, "pod": st.PodCreationTime,
			"scheduled": st.ScheduledTime, "initialized": st.InitializedTime, "container": st.ContainerStartTime} {
			g.Expect(at).NotTo(BeNil(), "%s: %s time: %s", s.Name, what, toJSON(s))
		}
		g.Expect(st.ContainerStartTime.Time).NotTo(BeTemporally("<", st.ScheduledTime.Time), s.Name)
		g.Expect(s.CompletionTime.Time).NotTo(BeTemporally("<", st.ContainerStartTime.Time), s.Name)
	}
	slow := run.Status.Steps[2]
	g.Expect(slow.Flaky).To(BeTrue())
	g.Expect(slow.Attempts).To(BeEquivalentTo(2))
	g.Expect(slow.Timing.PodCreationTime.Time).To(BeTemporally(">", slow.Timing.JobCreationTime.Time), "the last pod is the retry's")

	bin := flowciBinary(t)
	out, err := exec.Command(bin, "-n", ns, "describe", "timed").CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), string(out))
	t.Logf("flowci describe:\n%s", out)
	g.Expect(string(out)).To(ContainSubstring("Where the time went:"))
	g.Expect(string(out)).To(ContainSubstring("critical path: a → slow → join"))
	g.Expect(string(out)).To(ContainSubstring("Flaky: slow (succeeded on attempt 2)"))
	g.Expect(string(out)).To(MatchRegexp(`join +waiting \d+s · handoff \d+s · scheduling \d+s · preparing \d+s · pulling \d+s · running \d+s`))

	base, stop := runUI(t, g, nil)
	t.Cleanup(stop)
	ctx, cancel := context.WithTimeout(browser(t), 2*time.Minute)
	defer cancel()
	g.Expect(chromedp.Do(ctx, chromedp.Navigate(base+"/runs/"+ns+"/timed"), chromedp.WaitVisible(chromedp.CSS(".timeline")))).To(Succeed())
	drawn, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]any](`(() => {
		const rows = [...document.querySelectorAll('.tl-row')];
		const width = (el) => el.getBoundingClientRect().width;
		return {
			rows: rows.map(r => r.dataset.step),
			critical: rows.filter(r => r.classList.contains('critical')).map(r => r.dataset.step),
			flaky: rows.filter(r => r.querySelector('.flaky')).map(r => r.dataset.step),
			running: rows.filter(r => { const s = r.querySelector('.tl-running'); return s && width(s) > 0; }).map(r => r.dataset.step),
			slowRight: (() => { const s = document.querySelector('.tl-row[data-step="slow"] .tl-running').getBoundingClientRect(); return s.right; })(),
			fastRight: (() => { const s = document.querySelector('.tl-row[data-step="fast"] .tl-running').getBoundingClientRect(); return s.right; })(),
		};
	})()`))
	g.Expect(err).NotTo(HaveOccurred())
	screenshot(t, ctx, "timeline.png")
	g.Expect(drawn["rows"]).To(Equal([]any{"(run)", "a", "fast", "slow", "join"}))
	g.Expect(drawn["critical"]).To(Equal([]any{"a", "slow", "join"}))
	g.Expect(drawn["flaky"]).To(Equal([]any{"slow"}))
	g.Expect(drawn["running"]).To(ContainElement("slow"), "a bar for the step that ran for seconds")
	g.Expect(drawn["slowRight"]).To(BeNumerically(">", drawn["fastRight"]), "slow's bar ends to the right of fast's, on one axis")
}
