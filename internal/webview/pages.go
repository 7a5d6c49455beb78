package webview

import (
	"context"
	"fmt"
	"html"
	"html/template"
	"net/http"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/render"
	"github.com/flow-ci/flow-ci/internal/shorten"
)

var templateFuncs = template.FuncMap{
	"since": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return duration.HumanDuration(time.Since(t))
	},
	"lower": strings.ToLower,
	"short": shorten.SHA,
	"page":  func(title string, signedIn bool) headData { return headData{Title: title, SignedIn: signedIn} },
	// asText is a log's address as plain text.
	"asText": func(log string) string {
		if strings.Contains(log, "?") {
			return log + "&format=text"
		}
		return log + "?format=text"
	},
}

// headData is what every page's head shows.
type headData struct {
	Title    string
	SignedIn bool
}

// phases a filter may name.
var phases = map[string]bool{"": true, "Queued": true, "Pending": true, "Running": true, "Succeeded": true, "Failed": true, "Cancelled": true}

type runRow struct {
	Namespace, Name, UID, Repo, Branch, Commit, Phase, Progress, Step, Duration string
	// Link is the run's page.
	Link    string
	Created time.Time
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

// listIn lists resource into list in ns, or in every namespace the reader may list it
// in when ns is empty: then the server reads them all and keeps the items of the
// namespaces the authorizer allows (each decision cached for a few seconds).
func (s *Server) listIn(r *http.Request, ns, resource string, list client.ObjectList, opts ...client.ListOption) error {
	if ns != "" {
		if err := s.need(r, ns, "list", resource, ""); err != nil {
			return err
		}
		return s.opts.Client.List(r.Context(), list, append(opts, client.InNamespace(ns))...)
	}
	if err := s.opts.Client.List(r.Context(), list, opts...); err != nil {
		return err
	}
	if s.opts.Access == nil {
		return nil // the reader's own credentials listed only what they may
	}
	items, err := apimeta.ExtractList(list)
	if err != nil {
		return err
	}
	allowed := map[string]bool{}
	kept := items[:0]
	for _, o := range items {
		n := o.(client.Object).GetNamespace()
		ok, seen := allowed[n]
		if !seen {
			if ok, err = s.can(r, n, "list", resource, ""); err != nil {
				return err
			}
			allowed[n] = ok
		}
		if ok {
			kept = append(kept, o)
		}
	}
	return apimeta.SetList(list, kept)
}

// runs is the runs list, filtered by namespace, repository, branch and phase; with
// ?fragment=1 only its rows, which the page's script swaps in every few seconds. With
// the archive, the runs it keeps follow, a page at a time (?after=: the archive's
// next), leaving out those still in the cluster; a page after the first shows only
// archived runs.
func (s *Server) runs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ns, repo, branch, phase, after := q.Get("namespace"), q.Get("repo"), q.Get("branch"), q.Get("phase"), q.Get("after")
	if ns == "" {
		ns = s.opts.Namespace
	}
	if err := checkName("namespace", ns, true); err != nil {
		s.fail(w, err)
		return
	}
	if !phases[phase] {
		s.fail(w, badRequest{fmt.Sprintf("phase %q is not a run phase (Queued, Pending, Running, Succeeded, Failed, Cancelled)", phase)})
		return
	}
	if len(repo) > 2048 || len(branch) > 255 || len(after) > 1024 {
		s.fail(w, badRequest{"filter too long"})
		return
	}
	rows, live, err := s.liveRows(r, ns, repo, branch, phase)
	if err != nil {
		s.fail(w, err)
		return
	}
	page := "runs.html"
	if q.Get("fragment") != "" {
		page = "run-rows"
	}
	data := map[string]any{"Rows": rows, "Namespace": ns, "Repo": repo, "Branch": branch, "Phase": phase, "After": after,
		"Phases": []string{"Queued", "Pending", "Running", "Succeeded", "Failed", "Cancelled"}, "Query": r.URL.RawQuery, "SignedIn": s.signedIn(r)}
	if ra := s.archiveFor(r); ra != nil && page == "runs.html" {
		data["Archived"] = ra.archivedRows(r, ns, ArchiveQuery{RepoURL: repo, Branch: branch, Phase: phase, After: after}, live)
	}
	s.render(w, http.StatusOK, page, data)
}

// liveRows are the runs in the cluster that match the filters, newest first, and the
// UIDs of all it listed.
func (s *Server) liveRows(r *http.Request, ns, repo, branch, phase string) ([]runRow, map[string]bool, error) {
	fields := client.MatchingFields{}
	if repo != "" {
		fields[v1alpha1.FieldRepoURL] = repo
	}
	if branch != "" {
		fields[v1alpha1.FieldBranch] = branch
	}
	list := &v1alpha1.PipelineRunList{}
	if err := s.listIn(r, ns, "pipelineruns", list, fields); err != nil {
		return nil, nil, err
	}
	var rows []runRow
	live := map[string]bool{}
	for i := range list.Items {
		run := &list.Items[i]
		live[string(run.UID)] = true
		if phase != "" && string(run.Status.Phase) != phase {
			continue
		}
		rows = append(rows, runRow{Namespace: run.Namespace, Name: run.Name, UID: string(run.UID),
			Link: fmt.Sprintf("/runs/%s/%s", run.Namespace, run.Name), Repo: render.NormalizeRepoURL(run.Spec.RepoURL),
			Branch: run.Spec.Branch, Commit: run.Status.ShortCommit, Phase: orNone(string(run.Status.Phase)),
			Progress: run.Status.Progress, Step: run.Status.CurrentStep, Duration: runDuration(run), Created: run.CreationTimestamp.Time})
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Created.After(rows[j].Created) })
	return rows, live, nil
}

func orNone(s string) string {
	if s == "" {
		return "New"
	}
	return s
}

type stepRow struct {
	v1alpha1.StepStatus
	Depth               int
	Duration, Exit, Log string
	// LogNote says where the step's log comes from when not from its pod.
	LogNote logNote
}

// logNote says where a log pane's lines come from when not from a pod: From is
// "status" (the tail kept in status), "status-empty" (status keeps none) or "archive"
// (the run archive, which could not store Missing of it); the words are the
// template's ("log-note").
type logNote struct {
	From, Missing string
}

// stepRows are the steps of a run's page, from status alone (indented by their depth
// in the graph), with the address of each step's log.
func stepRows(steps []v1alpha1.StepStatus, logURL func(i int) string) []stepRow {
	depth := map[string]int{}
	var rows []stepRow
	for i, st := range steps {
		d := 0
		for _, dep := range st.DependsOn {
			d = max(d, depth[dep]+1)
		}
		depth[st.Name] = d
		row := stepRow{StepStatus: st, Depth: d, Log: logURL(i)}
		if st.StartTime != nil && st.CompletionTime != nil {
			row.Duration = st.CompletionTime.Sub(st.StartTime.Time).Round(time.Second).String()
		}
		if st.ExitCode != nil {
			row.Exit = fmt.Sprint(*st.ExitCode)
		}
		rows = append(rows, row)
	}
	return rows
}

// statusNote is what a step's log pane says when its pods are gone and only the tail
// kept in status is left.
func statusNote(st v1alpha1.StepStatus) logNote {
	if st.Message != "" {
		return logNote{From: "status"}
	}
	return logNote{From: "status-empty"}
}

// run is a run's page: its commit and outcome, its steps from status alone, each
// step's log, and the definition that ran. A run the cluster no longer holds, or
// another run of that name (?uid=), has its page from the archive.
func (s *Server) run(w http.ResponseWriter, r *http.Request) {
	ns, name, uid := r.PathValue("ns"), r.PathValue("name"), r.URL.Query().Get("uid")
	if err := checkUID(uid); err != nil {
		s.fail(w, err)
		return
	}
	run, err := s.getRun(r, ns, name)
	ra := s.archiveFor(r)
	if ra != nil && archivedOnly(run, err, uid) {
		s.archivedRun(w, r, ra, ns, name, uid)
		return
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	pods, err := s.opts.Logs.StepPods(r.Context(), run)
	if err != nil {
		pods = nil // logs then come from status
	}
	steps := stepRows(run.Status.Steps, func(i int) string { return fmt.Sprintf("/runs/%s/%s/steps/%d/log", ns, name, i) })
	var archived *ArchivedRun // read once, if a step's pods are gone
	for i, st := range run.Status.Steps {
		if st.Phase == v1alpha1.StepPending || st.Phase == v1alpha1.StepSkipped || pods[i] != nil {
			continue
		}
		if ra != nil && archived == nil {
			got, _ := ra.run(r.Context(), ns, name, string(run.UID)) // on an error, the notes say what status keeps
			archived = &got
		}
		if attempts := attemptsOf(archived.logs(), i); len(attempts) > 0 {
			steps[i].LogNote = archivedNote(attempts)
		} else {
			steps[i].LogNote = statusNote(st)
		}
	}
	page := "run.html"
	if r.URL.Query().Get("fragment") != "" {
		page = "run-body"
	}
	s.render(w, http.StatusOK, page, map[string]any{"Run": run, "Steps": steps, "Definition": s.definition(r.Context(), run),
		"Duration": runDuration(run), "Condition": ConditionMessage(run), "SignedIn": s.signedIn(r), "Timeline": timelineOf(run, time.Now()),
		"Artifacts": ra.artifactRows(r.Context(), ns, name, string(run.UID))})
}

// archivedOnly says whether a run's page comes from the archive: the cluster does not
// hold the run (err), or holds another run of that name than uid.
func archivedOnly(run *v1alpha1.PipelineRun, err error, uid string) bool {
	return apierrors.IsNotFound(err) || err == nil && uid != "" && string(run.UID) != uid
}

// getRun reads a run the reader may get.
func (s *Server) getRun(r *http.Request, ns, name string) (*v1alpha1.PipelineRun, error) {
	if err := firstError(checkName("namespace", ns, false), checkName("run", name, false)); err != nil {
		return nil, err
	}
	if err := s.need(r, ns, "get", "pipelineruns", ""); err != nil {
		return nil, err
	}
	run := &v1alpha1.PipelineRun{}
	if err := s.opts.Client.Get(r.Context(), client.ObjectKey{Namespace: ns, Name: name}, run); err != nil {
		return nil, err
	}
	return run, nil
}

// definition is the pipeline file that ran, from its ConfigMap, when the server may
// read it (the in-cluster server may not: it reads no ConfigMaps).
func (s *Server) definition(ctx context.Context, run *v1alpha1.PipelineRun) string {
	cm := &corev1.ConfigMap{}
	if err := s.opts.Client.Get(ctx, client.ObjectKey{Namespace: run.Namespace, Name: render.DefinitionName(run)}, cm); err != nil {
		return ""
	}
	return cm.Data[v1alpha1.DefinitionKey]
}

// ConditionMessage is the run's Succeeded condition as "(Reason: message)".
func ConditionMessage(run *v1alpha1.PipelineRun) string {
	for _, c := range run.Status.Conditions {
		if c.Type == v1alpha1.ConditionSucceeded {
			return "(" + c.Reason + ": " + c.Message + ")"
		}
	}
	return ""
}

type branchRow struct {
	Trigger, Namespace string
	v1alpha1.TriggerBranchStatus
	Badge string
}

// triggers lists triggers, each branch with its last commit, run and phase, and the
// URL of its status badge.
func (s *Server) triggers(w http.ResponseWriter, r *http.Request) {
	ns := r.URL.Query().Get("namespace")
	if ns == "" {
		ns = s.opts.Namespace
	}
	if err := checkName("namespace", ns, true); err != nil {
		s.fail(w, err)
		return
	}
	list := &v1alpha1.PipelineTriggerList{}
	if err := s.listIn(r, ns, "pipelinetriggers", list); err != nil {
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
	s.render(w, http.StatusOK, "triggers.html", map[string]any{"Triggers": list.Items, "Rows": rows, "Namespace": ns, "SignedIn": s.signedIn(r)})
}

// signedIn says whether the page offers to sign out.
func (s *Server) signedIn(r *http.Request) bool {
	_, ok := userOf(r.Context())
	return ok && s.opts.Access != nil
}

// badge is an SVG status badge of a trigger's branch, at a stable URL.
func (s *Server) badge(w http.ResponseWriter, r *http.Request) {
	ns, name, branch := r.PathValue("ns"), r.PathValue("trigger"), strings.TrimSuffix(r.PathValue("branch"), ".svg")
	if err := firstError(checkName("namespace", ns, false), checkName("trigger", name, false), s.need(r, ns, "get", "pipelinetriggers", "")); err != nil {
		s.fail(w, err)
		return
	}
	trig := &v1alpha1.PipelineTrigger{}
	if err := s.opts.Client.Get(r.Context(), client.ObjectKey{Namespace: ns, Name: name}, trig); err != nil {
		s.fail(w, err)
		return
	}
	text, colour := "unknown", "#9f9f9f"
	for _, b := range trig.Status.Branches {
		if b.Name != branch {
			continue
		}
		switch b.LastRunPhase {
		case v1alpha1.PhaseSucceeded:
			text, colour = "passing", "#2e7d32"
		case v1alpha1.PhaseFailed:
			text, colour = "failing", "#c62828"
		case v1alpha1.PhaseCancelled:
			text, colour = "cancelled", "#6d6d6d"
		case v1alpha1.PhasePending, v1alpha1.PhaseRunning, v1alpha1.PhaseQueued:
			text, colour = "running", "#b26a00"
		}
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "no-cache, max-age=0")
	label := "flow-ci"
	lw, tw := 6*len(label)+12, 6*len(text)+12
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="20" role="img" aria-label="%s: %s">`+
		`<rect width="%d" height="20" fill="#555"/><rect x="%d" width="%d" height="20" fill="%s"/>`+
		`<g fill="#fff" font-family="Verdana,sans-serif" font-size="11"><text x="6" y="14">%s</text><text x="%d" y="14">%s</text></g></svg>`,
		lw+tw, label, html.EscapeString(text), lw, lw, tw, colour, label, lw+6, html.EscapeString(text))
}
