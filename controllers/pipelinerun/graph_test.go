package pipelinerun

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/controller-runtime/pkg/client"

	civ1alpha1 "github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/render"
)

const diamond = `name: Diamond
steps:
- name: a
  commands: [make gen]
- name: b
  dependsOn: [a]
  resources: {cpu: "1", memory: 1Gi}
  commands: [make lint]
- name: c
  dependsOn: [a]
  resources: {cpu: 1500m, memory: 2Gi}
  commands: [make test]
- name: d
  dependsOn: [b, c]
  commands: [make build]
`

// writeLog records, in order, the Jobs the reconciler creates and its status writes,
// so a test can tell which creates happened in one pass.
type writeLog struct {
	client.Client
	mu  sync.Mutex
	ops []string
}

func (w *writeLog) add(op string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ops = append(w.ops, op)
}

func (w *writeLog) Ops() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.ops...)
}

func (w *writeLog) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	err := w.Client.Create(ctx, obj, opts...)
	if _, ok := obj.(*batchv1.Job); ok && err == nil {
		w.add("create " + obj.GetName())
	}
	return err
}

func (w *writeLog) Status() client.SubResourceWriter { return statusLog{w.Client.Status(), w} }

type statusLog struct {
	client.SubResourceWriter
	log *writeLog
}

func (s statusLog) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	err := s.SubResourceWriter.Patch(ctx, obj, patch, opts...)
	if err == nil {
		s.log.add("status")
	}
	return err
}

func recordWrites(log *writeLog) func(*Reconciler) {
	return func(r *Reconciler) { log.Client = r.Client; r.Client = log }
}

// stepJob waits for the Job of the step named name.
func stepJob(t *testing.T, run *civ1alpha1.PipelineRun, name string) *batchv1.Job {
	t.Helper()
	for i, s := range run.Status.Steps {
		if s.Name == name {
			return waitJob(t, run.Namespace, stepJobName(run, i))
		}
	}
	t.Fatalf("no step %q in %v", name, run.Status.Steps)
	return nil
}

func stepStatus(run *civ1alpha1.PipelineRun, name string) civ1alpha1.StepStatus {
	for _, s := range run.Status.Steps {
		if s.Name == name {
			return s
		}
	}
	return civ1alpha1.StepStatus{}
}

// TestDiamond: A → B, C → D. B and C are created in the pass that saw A complete (no
// status write between their creates), run side by side, and D waits for both.
func TestDiamond(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, diamond)
	log := &writeLog{}
	startManager(t, ns, recordWrites(log))
	a := startFirstStep(t, ns, "dia", url, nil)
	run := getRun(g, ns, "dia")
	g.Expect(run.Status.Steps).To(HaveLen(4))
	g.Expect(stepStatus(run, "b").DependsOn).To(Equal([]string{"a"}))
	g.Expect(stepStatus(run, "d").DependsOn).To(Equal([]string{"b", "c"}), "resolved, so a reader needs no definition")
	// With a ReadWriteOnce workspace the clone reserves the widest level: b and c.
	clone := waitJob(t, ns, "dia-clone")
	req := clone.Spec.Template.Spec.Containers[0].Resources.Requests
	g.Expect(req.Cpu().MilliValue()).To(BeEquivalentTo(2500))
	g.Expect(req.Memory().Cmp(resource.MustParse("3Gi"))).To(Equal(0), "memory request %s", req.Memory())

	completeJob(t, a, "node-a")
	b, c := stepJob(t, run, "b"), stepJob(t, run, "c")
	g.Eventually(func(g Gomega) {
		ops := log.Ops()
		ib, ic := indexOf(ops, "create "+b.Name), indexOf(ops, "create "+c.Name)
		g.Expect([]int{ib, ic}).To(HaveEach(BeNumerically(">=", 0)), "both created: %v", ops)
		lo, hi := min(ib, ic), max(ib, ic)
		g.Expect(ops[lo:hi]).NotTo(ContainElement("status"), "one pass creates both: %v", ops)
		g.Expect(len(ops)).To(BeNumerically(">", hi+1), "then a status write: %v", ops)
		g.Expect(ops[hi+1]).To(Equal("status"), "then a status write: %v", ops)
	}).Should(Succeed())
	for _, j := range []*batchv1.Job{b, c} {
		g.Expect(render.PinnedNode(j)).To(Equal("node-a"), "ReadWriteOnce: on the clone's node")
	}
	g.Expect(b.Spec.Template.Spec.Containers[0].Resources.Requests.Cpu().String()).To(Equal("1"))
	g.Eventually(func(g Gomega) {
		r := getRun(g, ns, "dia")
		g.Expect(r.Status.CurrentStep).To(Equal("b,c"))
		g.Expect(r.Status.Progress).To(Equal("1/4"))
	}).Should(Succeed())

	completeJob(t, b, "node-a")
	g.Consistently(func(g Gomega) { g.Expect(jobsOf(g, ns)).To(HaveLen(4)) }).
		WithTimeout(time.Second).Should(Succeed(), "d waits for c")
	completeJob(t, c, "node-a")
	completeJob(t, stepJob(t, run, "d"), "node-a")
	run = waitFinished(t, ns, "dia")
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded))
	g.Expect(run.Status.Progress).To(Equal("4/4"))
	g.Expect(jobsOf(g, ns)).To(HaveLen(5), "clone and four steps, none twice")

	// Where the time went: the clone's times, each step's ready time and Job, and the
	// slower branch (c ended a second after b) on the critical path.
	tm := run.Status.Timing
	g.Expect(tm).NotTo(BeNil())
	g.Expect(tm.CloneStartTime).NotTo(BeNil())
	g.Expect(tm.CloneCompletionTime).NotTo(BeNil())
	g.Expect(tm.CriticalPath).To(Equal([]string{"a", "c", "d"}))
	for _, st := range run.Status.Steps {
		g.Expect(st.Timing).NotTo(BeNil(), st.Name)
		g.Expect(st.Timing.ReadyTime).NotTo(BeNil(), st.Name)
		g.Expect(st.Timing.JobCreationTime).NotTo(BeNil(), st.Name)
	}
	g.Expect(stepStatus(run, "a").Timing.ReadyTime.Equal(tm.CloneCompletionTime)).To(BeTrue(), "a root is ready when the clone ends")
	g.Expect(stepStatus(run, "d").Timing.ReadyTime.Equal(stepStatus(run, "c").CompletionTime)).To(BeTrue(), "d is ready when c, the later of b and c, ends")
}

func indexOf(ops []string, op string) int {
	for i, o := range ops {
		if o == op {
			return i
		}
	}
	return -1
}

// TestFailureSkipsDependents: b fails, so d (after b) is skipped, while the
// independent e still runs to its end; the run fails with b's reason.
func TestFailureSkipsDependents(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, "name: t\nsteps:\n- name: b\n  commands: [make test]\n- name: d\n  commands: [make build]\n"+
		"- name: e\n  dependsOn: []\n  commands: [make docs]\n")
	startManager(t, ns)
	b := startFirstStep(t, ns, "br", url, nil)
	run := getRun(g, ns, "br")
	e := stepJob(t, run, "e")
	failJob(t, b, "node-a", 2, "FAIL")
	g.Eventually(func(g Gomega) {
		r := getRun(g, ns, "br")
		g.Expect(stepStatus(r, "d").Phase).To(Equal(civ1alpha1.StepSkipped))
		g.Expect(stepStatus(r, "d").Reason).To(Equal(civ1alpha1.ReasonUpstreamFailed))
		g.Expect(r.Status.Phase).To(Equal(civ1alpha1.PhaseRunning), "e is still running")
		g.Expect(r.Status.CurrentStep).To(Equal("e"))
	}).Should(Succeed())
	g.Consistently(func(g Gomega) {
		g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(e), &batchv1.Job{})).To(Succeed())
	}).WithTimeout(time.Second).Should(Succeed(), "without failFast e is not stopped")
	completeJob(t, e, "node-a")
	run = waitFinished(t, ns, "br")
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseFailed))
	g.Expect(succeededCond(run).Message).To(ContainSubstring(`step "b" failed with exit code 2`))
	g.Expect(stepStatus(run, "e").Phase).To(Equal(civ1alpha1.StepSucceeded))
}

// TestAllowFailure: the failed step's dependents run and the run still succeeds.
func TestAllowFailure(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, "name: t\nsteps:\n- name: flaky\n  allowFailure: true\n  commands: [make e2e]\n- name: after\n  commands: [echo ok]\n")
	startManager(t, ns)
	flaky := startFirstStep(t, ns, "af", url, nil)
	failJob(t, flaky, "node-a", 1, "")
	run := getRun(g, ns, "af")
	completeJob(t, stepJob(t, run, "after"), "node-a")
	run = waitFinished(t, ns, "af")
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded))
	g.Expect(stepStatus(run, "flaky").Phase).To(Equal(civ1alpha1.StepFailed))
	g.Expect(stepStatus(run, "flaky").Reason).To(Equal(civ1alpha1.ReasonAllowedFailure))
	g.Expect(succeededCond(run).Message).To(ContainSubstring("1 failed with allowFailure"))
}

// TestFailFast: b fails, so the running c is stopped with its log tail kept, and its
// Job is deleted; nothing more starts.
func TestFailFast(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, "name: t\nfailFast: true\nsteps:\n- name: b\n  commands: [make lint]\n"+
		"- name: c\n  dependsOn: []\n  commands: [make test]\n- name: d\n  dependsOn: [c]\n  commands: [make build]\n")
	startManager(t, ns)
	b := startFirstStep(t, ns, "ff", url, nil)
	run := getRun(g, ns, "ff")
	c := stepJob(t, run, "c")
	podFor(t, c, running())
	failJob(t, b, "node-a", 1, "")
	run = waitFinished(t, ns, "ff")
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseFailed))
	g.Expect(succeededCond(run).Reason).To(Equal(civ1alpha1.ReasonStepFailed))
	sc := stepStatus(run, "c")
	g.Expect(sc.Phase).To(Equal(civ1alpha1.StepCancelled))
	g.Expect(sc.Reason).To(Equal(civ1alpha1.ReasonFailFast))
	g.Expect(sc.Message).To(Equal("log tail of " + c.Name + "-pod"))
	g.Expect(stepStatus(run, "d").Phase).To(Equal(civ1alpha1.StepSkipped))
	waitJobGone(t, c)
	g.Expect(jobsOf(g, ns)).To(HaveLen(2), "clone and b; d never started")
}

// TestRestartMidGraph: a manager stopped while b and c run, and a new one started,
// adopts both Jobs and creates only d: no Job twice, no step re-run.
func TestRestartMidGraph(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ns := env.NewNamespace(t)
	_, url := serveRepo(t, diamond)
	stop := startManager(t, ns)
	a := startFirstStep(t, ns, "rs", url, nil)
	completeJob(t, a, "node-a")
	run := getRun(g, ns, "rs")
	b, c := stepJob(t, run, "b"), stepJob(t, run, "c")
	stop()

	log := &writeLog{}
	startManager(t, ns, recordWrites(log))
	completeJob(t, b, "node-a")
	completeJob(t, c, "node-a")
	d := stepJob(t, run, "d")
	completeJob(t, d, "node-a")
	run = waitFinished(t, ns, "rs")
	g.Expect(run.Status.Phase).To(Equal(civ1alpha1.PhaseSucceeded))
	var creates []string
	for _, op := range log.Ops() {
		if strings.HasPrefix(op, "create ") {
			creates = append(creates, op)
		}
	}
	g.Expect(creates).To(Equal([]string{"create " + d.Name}))
	for _, j := range []*batchv1.Job{a, b, c} {
		got := &batchv1.Job{}
		g.Expect(env.Client.Get(context.Background(), client.ObjectKeyFromObject(j), got)).To(Succeed())
		g.Expect(got.UID).To(Equal(j.UID), "%s kept, not recreated", j.Name)
	}
}
