package main

import (
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/render"
)

var templateFuncs = template.FuncMap{
	"since": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return duration.HumanDuration(time.Since(t))
	},
	"lower": strings.ToLower,
	"short": shortSHA,
}

// phases a filter may name.
var phases = map[string]bool{"": true, "Queued": true, "Pending": true, "Running": true, "Succeeded": true, "Failed": true, "Cancelled": true}

type runRow struct {
	Namespace, Name, Repo, Branch, Commit, Phase, Progress, Step, Duration string
	Created                                                                time.Time
}

func runDuration(run *v1alpha1.PipelineRun) string {
	st := run.Status
	if st.StartTime == nil {
		return ""
	}
	end := time.Now()
	if st.CompletionTime != nil {
		end = st.CompletionTime.Time
	}
	return end.Sub(st.StartTime.Time).Round(time.Second).String()
}

// runs is the runs list, filtered by namespace, repository, branch and phase; with
// ?fragment=1 only its rows, which the page's script swaps in every few seconds.
func (s *uiServer) runs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ns, repo, branch, phase := q.Get("namespace"), q.Get("repo"), q.Get("branch"), q.Get("phase")
	if ns == "" {
		ns = s.k.namespace
	}
	if err := checkName("namespace", ns, true); err != nil {
		s.fail(w, err)
		return
	}
	if !phases[phase] {
		s.fail(w, badRequest{fmt.Sprintf("phase %q is not a run phase (Queued, Pending, Running, Succeeded, Failed, Cancelled)", phase)})
		return
	}
	if len(repo) > 2048 || len(branch) > 255 {
		s.fail(w, badRequest{"filter too long"})
		return
	}
	list := &v1alpha1.PipelineRunList{}
	opts := []client.ListOption{}
	if ns != "" {
		opts = append(opts, client.InNamespace(ns))
	}
	fields := client.MatchingFields{}
	if repo != "" {
		fields[v1alpha1.FieldRepoURL] = repo
	}
	if branch != "" {
		fields[v1alpha1.FieldBranch] = branch
	}
	if len(fields) > 0 {
		opts = append(opts, fields)
	}
	if err := s.k.c.List(r.Context(), list, opts...); err != nil {
		s.fail(w, err)
		return
	}
	var rows []runRow
	for i := range list.Items {
		run := &list.Items[i]
		if phase != "" && string(run.Status.Phase) != phase {
			continue
		}
		rows = append(rows, runRow{Namespace: run.Namespace, Name: run.Name, Repo: render.NormalizeRepoURL(run.Spec.RepoURL),
			Branch: run.Spec.Branch, Commit: run.Status.ShortCommit, Phase: orNone(string(run.Status.Phase)),
			Progress: run.Status.Progress, Step: run.Status.CurrentStep, Duration: runDuration(run), Created: run.CreationTimestamp.Time})
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Created.After(rows[j].Created) })
	page := "runs.html"
	if q.Get("fragment") != "" {
		page = "run-rows"
	}
	s.render(w, http.StatusOK, page, map[string]any{"Rows": rows, "Namespace": ns, "Repo": repo, "Branch": branch, "Phase": phase,
		"Phases": []string{"Queued", "Pending", "Running", "Succeeded", "Failed", "Cancelled"}, "Query": r.URL.RawQuery})
}

type stepRow struct {
	v1alpha1.StepStatus
	Depth               int
	Duration, Exit, Log string
	PodsGone            bool
}

// run is a run's page: its commit and outcome, its steps from status alone (indented
// by their depth in the graph), each step's log, and the definition that ran.
func (s *uiServer) run(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("ns"), r.PathValue("name")
	if err := errorsJoin(checkName("namespace", ns, false), checkName("run", name, false)); err != nil {
		s.fail(w, err)
		return
	}
	run := &v1alpha1.PipelineRun{}
	if err := s.k.c.Get(r.Context(), client.ObjectKey{Namespace: ns, Name: name}, run); err != nil {
		s.fail(w, err)
		return
	}
	pods, err := stepPods(r.Context(), s.k, run)
	if err != nil {
		pods = nil // logs then come from status
	}
	depth := map[string]int{}
	var steps []stepRow
	for i, st := range run.Status.Steps {
		d := 0
		for _, dep := range st.DependsOn {
			d = max(d, depth[dep]+1)
		}
		depth[st.Name] = d
		row := stepRow{StepStatus: st, Depth: d, Log: fmt.Sprintf("/runs/%s/%s/steps/%d/log", ns, name, i)}
		if st.StartTime != nil && st.CompletionTime != nil {
			row.Duration = st.CompletionTime.Sub(st.StartTime.Time).Round(time.Second).String()
		}
		if st.ExitCode != nil {
			row.Exit = fmt.Sprint(*st.ExitCode)
		}
		row.PodsGone = st.Phase != v1alpha1.StepPending && st.Phase != v1alpha1.StepSkipped && pods[i] == nil
		steps = append(steps, row)
	}
	def := ""
	cm := &corev1.ConfigMap{}
	if err := s.k.c.Get(r.Context(), client.ObjectKey{Namespace: ns, Name: render.DefinitionName(run)}, cm); err == nil {
		def = cm.Data[v1alpha1.DefinitionKey]
	}
	page := "run.html"
	if r.URL.Query().Get("fragment") != "" {
		page = "run-body"
	}
	s.render(w, http.StatusOK, page, map[string]any{"Run": run, "Steps": steps, "Definition": def, "Duration": runDuration(run),
		"Condition": conditionMessage(run)})
}

type branchRow struct {
	Trigger, Namespace string
	v1alpha1.TriggerBranchStatus
	Badge string
}

// triggers lists triggers, each branch with its last commit, run and phase, and the
// URL of its status badge.
func (s *uiServer) triggers(w http.ResponseWriter, r *http.Request) {
	ns := r.URL.Query().Get("namespace")
	if ns == "" {
		ns = s.k.namespace
	}
	if err := checkName("namespace", ns, true); err != nil {
		s.fail(w, err)
		return
	}
	list := &v1alpha1.PipelineTriggerList{}
	opts := []client.ListOption{}
	if ns != "" {
		opts = append(opts, client.InNamespace(ns))
	}
	if err := s.k.c.List(r.Context(), list, opts...); err != nil {
		s.fail(w, err)
		return
	}
	var rows []branchRow
	for _, t := range list.Items {
		for _, b := range t.Status.Branches {
			rows = append(rows, branchRow{Trigger: t.Name, Namespace: t.Namespace, TriggerBranchStatus: b,
				Badge: fmt.Sprintf("/badge/%s/%s/%s", t.Namespace, t.Name, b.Name)})
		}
	}
	s.render(w, http.StatusOK, "triggers.html", map[string]any{"Triggers": list.Items, "Rows": rows, "Namespace": ns})
}

func errorsJoin(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
