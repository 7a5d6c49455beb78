package webview

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
	"github.com/flow-ci/flow-ci/internal/archive"
	"github.com/flow-ci/flow-ci/internal/archive/runrecord"
)

// archivedRun is the page of a run the archive keeps: its record (outcome, steps,
// what the archive could not keep, events), each step's whole log and its clone's,
// and the pipeline file that ran. A step whose log the archive does not have shows the
// tail kept in status, labelled as such.
func (s *Server) archivedRun(w http.ResponseWriter, r *http.Request, ra *readerArchive, ns, name, uid string) {
	got, err := ra.run(r.Context(), ns, name, uid)
	if err != nil {
		s.fail(w, err)
		return
	}
	doc, err := runrecord.Decode(got.Record)
	if err != nil {
		s.fail(w, err)
		return
	}
	run := doc.PipelineRun()
	base := fmt.Sprintf("/runs/%s/%s", ns, name)
	steps := stepRows(run.Status.Steps, func(i int) string { return fmt.Sprintf("%s/steps/%d/log?uid=%s", base, i, got.UID) })
	for i, st := range run.Status.Steps {
		switch attempts := attemptsOf(got.Logs, i); {
		case len(attempts) > 0:
			steps[i].LogNote = archivedNote(attempts)
		case st.Phase != v1alpha1.StepPending && st.Phase != v1alpha1.StepSkipped:
			steps[i].LogNote = statusNote(st)
		}
	}
	data := map[string]any{"Run": run, "Steps": steps, "Definition": doc.PipelineFile, "Duration": runDuration(run),
		"Condition": ConditionMessage(run), "Doc": doc, "SignedIn": s.signedIn(r), "Artifacts": ra.artifactRows(r.Context(), ns, name, got.UID),
		"Timeline": timelineOf(run, time.Now())}
	if clone := attemptsOf(got.Logs, cloneStep); len(clone) > 0 {
		data["Clone"] = map[string]any{"Log": fmt.Sprintf("%s/clone/log?uid=%s", base, got.UID), "LogNote": archivedNote(clone)}
	}
	s.render(w, http.StatusOK, "archived.html", data)
}

// logRun is the run whose log a request reads, once the reader may read its logs (get
// on pods/log): the cluster's, or the archive's record of it when the cluster does not
// hold it, or holds another run of that name than ?uid=.
func (s *Server) logRun(r *http.Request) (*v1alpha1.PipelineRun, *readerArchive, error) {
	ns, name, uid := r.PathValue("ns"), r.PathValue("name"), r.URL.Query().Get("uid")
	if err := checkUID(uid); err != nil {
		return nil, nil, err
	}
	run, err := s.getRun(r, ns, name)
	ra := s.archiveFor(r)
	archived := ra != nil && archivedOnly(run, err, uid)
	if err != nil && !archived {
		return nil, nil, err
	}
	if err := s.need(r, ns, "get", "pods", "log"); err != nil {
		return nil, nil, err
	}
	if !archived {
		return run, ra, nil
	}
	got, err := ra.run(r.Context(), ns, name, uid)
	if err != nil {
		return nil, nil, err
	}
	doc, err := runrecord.Decode(got.Record)
	if err != nil {
		return nil, nil, err
	}
	return doc.PipelineRun(), ra, nil
}

// cloneLog serves the clone's log of a run from the archive (every pod of it, in
// order), as stepLog serves a step's.
func (s *Server) cloneLog(w http.ResponseWriter, r *http.Request) {
	run, ra, err := s.logRun(r)
	if err == nil && ra == nil {
		err = fmt.Errorf("%w: the clone's log is kept by the run archive, and this web view has none", archive.ErrNotFound)
	}
	var got ArchivedRun
	if err == nil {
		got, err = ra.run(r.Context(), run.Namespace, run.Name, string(run.UID))
	}
	var attempts []ArchivedLog
	if err == nil {
		if attempts = attemptsOf(got.Logs, cloneStep); len(attempts) == 0 {
			err = fmt.Errorf("%w: the run archive holds no log of the clone of %s", archive.ErrNotFound, run.Name)
		}
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	sink, release, err := s.openSink(w, r)
	if err != nil {
		s.fail(w, err)
		return
	}
	defer release()
	if sink.source("archive") == nil && ra.sendArchived(r.Context(), got, attempts, resumeFrom(r), sink) {
		_ = sink.end("")
	}
}

// sendFromArchive sends step idx's log from the archive, if it holds any of it, and
// says whether it did.
func (s *Server) sendFromArchive(ctx context.Context, ra *readerArchive, run *v1alpha1.PipelineRun, idx, from int, sink logSink) bool {
	if ra == nil {
		return false
	}
	got, err := ra.run(ctx, run.Namespace, run.Name, string(run.UID))
	attempts := attemptsOf(got.Logs, idx)
	if err != nil || len(attempts) == 0 {
		return false
	}
	if sink.source("archive") == nil && ra.sendArchived(ctx, got, attempts, from, sink) {
		_ = sink.end(string(run.Status.Steps[idx].Phase))
	}
	return true
}
