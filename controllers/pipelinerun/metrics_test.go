package pipelinerun

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/controllers/metrics"
)

// series returns the gathered samples of name whose namespace label is ns, keyed by
// their other labels in name order ("reason=StepFailed,result=Failed"), and every label name seen.
func series(g Gomega, name, ns string) (map[string]*dto.Metric, map[string]bool) {
	families, err := crmetrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	out, names := map[string]*dto.Metric{}, map[string]bool{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.Metric {
			var key []string
			mine := false
			for _, l := range m.Label {
				names[l.GetName()] = true
				if l.GetName() == "namespace" {
					mine = l.GetValue() == ns
				} else if l.GetValue() != "" {
					key = append(key, l.GetName()+"="+l.GetValue())
				}
			}
			if mine {
				out[strings.Join(key, ",")] = m
			}
		}
	}
	return out, names
}

// TestMetrics runs a success, a failure, a cancel and a queued run, then scrapes the
// registry: the totals, durations, queue wait, step and handoff series have the values
// of what happened, the gauge counts the runs by phase, and no label is a run, commit
// or branch.
func TestMetrics(t *testing.T) {
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	repo, url := serveRepo(t, twoSteps)
	commit := repo.RevParse(t, "main")
	elected := make(chan struct{})
	metrics.RegisterRunsGauge(env.Client, elected)
	startManager(t, ns)

	// Succeeds, while a second run of the branch waits in the queue.
	job := startFirstStep(t, ns, "ok", url, withPolicy(civ1alpha1.ConcurrencyQueue))
	queued := newRunObject(ns, "queued", url)
	withPolicy(civ1alpha1.ConcurrencyQueue)(queued)
	createRun(t, queued)
	g.Eventually(func(g Gomega) { g.Expect(phaseOf(g, ns, "queued")).To(Equal(civ1alpha1.PhaseQueued)) }).Should(Succeed())
	// A standby (not yet elected) reports no gauge: a sum over replicas counts each run once.
	g.Consistently(func(g Gomega) {
		gauge, _ := series(g, "flowci_pipelineruns", ns)
		g.Expect(gauge).To(BeEmpty())
	}).WithTimeout(time.Second).Should(Succeed())
	close(elected)
	g.Eventually(func(g Gomega) {
		gauge, _ := series(g, "flowci_pipelineruns", ns)
		g.Expect(gauge).To(HaveKey("phase=Queued"))
		g.Expect(gauge["phase=Queued"].GetGauge().GetValue()).To(Equal(1.0))
	}).Should(Succeed())
	afterASecond() // the queued run's wait is measured in seconds
	completeJob(t, job, "node-a")
	completeRun(t, ns, "ok")
	completeRun(t, ns, "queued")

	// Fails at its first step; another is cancelled while running.
	failJob(t, startFirstStep(t, ns, "bad", url, nil), "node-a", 2, "boom")
	waitFinished(t, ns, "bad")
	podFor(t, startFirstStep(t, ns, "stop", url, nil), running())
	_, err := kubectlPatchCancel(ns, "stop", true)
	g.Expect(err).NotTo(HaveOccurred())
	waitFinished(t, ns, "stop")

	g.Eventually(func(g Gomega) {
		totals, _ := series(g, "flowci_pipelinerun_total", ns)
		g.Expect(totals).To(HaveLen(3))
		g.Expect(totals["reason=Succeeded,result=Succeeded"].GetCounter().GetValue()).To(Equal(2.0))
		g.Expect(totals["reason=StepFailed,result=Failed"].GetCounter().GetValue()).To(Equal(1.0))
		g.Expect(totals["reason=Cancelled,result=Cancelled"].GetCounter().GetValue()).To(Equal(1.0))
	}).WithTimeout(10 * time.Second).Should(Succeed())
	durations, _ := series(g, "flowci_pipelinerun_duration_seconds", ns)
	g.Expect(durations["result=Succeeded"].GetHistogram().GetSampleCount()).To(Equal(uint64(2)))
	wait, _ := series(g, "flowci_pipelinerun_queue_wait_seconds", ns)
	g.Expect(wait[""].GetHistogram().GetSampleCount()).To(Equal(uint64(4)), "every run that started")
	g.Expect(wait[""].GetHistogram().GetSampleSum()).To(BeNumerically(">=", 1.0), "the queued run waited over a second")
	steps, _ := series(g, "flowci_step_duration_seconds", ns)
	g.Expect(steps["result=Succeeded"].GetHistogram().GetSampleCount()).To(Equal(uint64(4)), "two steps of each succeeded run")
	g.Expect(steps["result=Failed"].GetHistogram().GetSampleCount()).To(Equal(uint64(1)))
	handoffs, _ := series(g, "flowci_step_handoff_seconds", ns)
	g.Expect(handoffs[""].GetHistogram().GetSampleCount()).To(Equal(uint64(6)), "4 first steps after their clone, 2 second steps")
	pods, _ := series(g, "flowci_step_pod_start_seconds", ns)
	g.Expect(pods[""].GetHistogram().GetSampleCount()).To(BeNumerically(">=", 4))

	// Bounded labels: none names a run, a commit or a branch.
	for _, name := range []string{"flowci_pipelinerun_total", "flowci_pipelinerun_duration_seconds", "flowci_pipelineruns",
		"flowci_step_duration_seconds", "flowci_step_handoff_seconds", "flowci_git_seconds"} {
		got, labels := series(g, name, ns)
		for l := range labels {
			g.Expect([]string{"namespace", "result", "reason", "phase", "repository", "operation"}).To(ContainElement(l), "%s has label %s", name, l)
		}
		for key := range got {
			for _, bad := range []string{"ok", "queued", "bad", "stop", commit, "main"} {
				g.Expect(strings.Split(key, ",")).NotTo(ContainElement(HaveSuffix("="+bad)), "%s{%s}", name, key)
			}
		}
	}
	families, err := crmetrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	reads := uint64(0)
	for _, f := range families {
		for _, m := range f.Metric {
			if f.GetName() == "flowci_git_seconds" && len(m.Label) == 2 && m.Label[0].GetValue() == "read" && m.Label[1].GetValue() == "ok" {
				reads = m.GetHistogram().GetSampleCount()
			}
		}
	}
	g.Expect(reads).To(BeNumerically(">=", 1), "flowci_git_seconds{operation=read,result=ok}")
}
